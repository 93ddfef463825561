"""Story rows: what detection keeps of each entry, and what it decided (``feedsvc.stories``).

``StoryStore.detect_pending`` detects every stored entry that has no story row
yet, oldest id first, a batch per transaction: the decisions are the pure
``stories.detect`` over :class:`SqlIndex`, the ``StoryIndex`` of one
connection, and each entry's rows are written before the next entry is read,
so a batch sees itself. Detection is serialised across processes: on
PostgreSQL by a transaction-level advisory lock taken before the pending
entries are read, on SQLite by ``BEGIN IMMEDIATE``. So two processes that
store entries of one story at the same time still put them in one cluster:
whichever detects second finds the first's band rows (and an entry is never
detected twice). The cluster id is the entry id of the cluster's first
detected member and never changes.

When an entry joins a cluster or a series, what the feeds show of the other
members changes ("Also reported by", the list of parts): their
``story_entries.revision`` goes up (the fragment cache's key, see
``publish.fragments``) and they are marked unfiled, so the publish that files
the new entry regenerates their feeds too.

Term counts (the IDF's document frequencies) only grow: retention deletes an
entry's rows but not its counts, which then over-count a little, as if the
store were larger; weights are relative, so this changes little.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)

from feedsvc.model import Entry
from feedsvc.store.categories import to_entry
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import (
    UTCDateTime,
    entries,
    sources,
    story_bands,
    story_entries,
    story_related,
    story_term_counts,
    story_terms,
)
from feedsvc.stories import terms as term_vectors
from feedsvc.stories.detect import detect
from feedsvc.stories.model import (
    ClusterCandidate,
    Detection,
    RelatedCandidate,
    SeriesCandidate,
    SeriesContext,
    StoryContext,
    StoryRef,
    StoryText,
    TermVector,
)
from feedsvc.stories.related import CANDIDATES_PER_TERM

BATCH = 200  # entries detected per transaction
_LOCK = 0x5EED_5709  # the advisory lock key of detection on PostgreSQL
_LITTLE = sys.byteorder == "little"
_DISPLAY_DATE = func.coalesce(entries.c.published_at, entries.c.first_seen_at, type_=UTCDateTime())


class StoryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def detect_pending(self, now: datetime, *, batch: int = BATCH) -> list[int]:
        """Detect every entry without story rows; return the ids of the entries whose
        feed items changed (the new ones and the members whose story they joined)."""
        changed: list[int] = []
        while True:
            with writing(self._engine) as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
                pending = _pending(conn, batch)
                if not pending:
                    return changed
                index = SqlIndex(conn)
                for story in pending:
                    changed += index.add(detect(story, index, now=now))
            if len(pending) < batch:
                return changed

    def pending(self) -> int:
        """How many stored entries have no story rows yet."""
        query = select(func.count()).select_from(entries).where(~_detected())
        with reading(self._engine) as conn:
            return int(conn.execute(query).scalar_one())

    def story_context(self, entry_id: int) -> StoryContext:
        """An entry's series, related stories and other reports (all empty if undetected)."""
        return self.contexts([entry_id]).get(entry_id, StoryContext())

    def contexts(self, entry_ids: Sequence[int]) -> dict[int, StoryContext]:
        """:meth:`story_context` of many entries at once (the detected ones)."""
        found: dict[int, StoryContext] = {}
        with reading(self._engine) as conn:
            for start in range(0, len(entry_ids), 500):
                found |= _contexts(conn, list(entry_ids[start : start + 500]))
        return found


def _detected() -> Any:
    return select(story_entries.c.entry_id).where(story_entries.c.entry_id == entries.c.id).exists()


def _pending(conn: Connection, limit: int) -> list[StoryText]:
    query = (
        select(
            entries.c.id,
            entries.c.source_id,
            entries.c.title,
            entries.c.summary,
            entries.c.content,
            entries.c.link,
            entries.c.guid,
            _DISPLAY_DATE.label("date"),
        )
        .where(~_detected())
        .order_by(entries.c.id)
        .limit(limit)
    )
    return [
        StoryText(
            entry_id=row.id,
            source_id=row.source_id,
            title=row.title,
            published=row.date,
            summary=row.summary,
            content=row.content,
            link=row.link,
            guid=row.guid,
        )
        for row in conn.execute(query)
    ]


class SqlIndex:
    """``stories.detect.StoryIndex`` over one connection's transaction; ``add`` writes."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._size = int(conn.execute(select(func.count()).select_from(story_entries)).scalar_one())

    def size(self) -> int:
        return self._size

    def frequencies(self, terms: Iterable[int]) -> Mapping[int, int]:
        wanted = list(terms)
        found: dict[int, int] = {}
        for start in range(0, len(wanted), 900):
            query = select(story_term_counts.c.term, story_term_counts.c.count).where(
                story_term_counts.c.term.in_(wanted[start : start + 900])
            )
            found.update((int(t), int(c)) for t, c in self._conn.execute(query))
        return found

    def cluster_candidates(
        self, bands: Collection[int], exact: Collection[int], since: datetime
    ) -> Sequence[ClusterCandidate]:
        conditions = []
        if bands:
            conditions.append(
                and_(story_bands.c.band_key.in_(list(bands)), story_bands.c.published_at >= since)
            )
        if exact:
            conditions.append(story_bands.c.band_key.in_(list(exact)))
        if not conditions:
            return []
        matched = select(story_bands.c.entry_id).where(or_(*conditions))
        s = story_entries.c
        query = select(
            s.entry_id, s.source_id, s.published_at, s.cluster_id, s.exact, s.shingles, s.names
        ).where(s.entry_id.in_(matched))
        return [
            ClusterCandidate(
                row.entry_id,
                row.source_id,
                row.published_at,
                row.cluster_id,
                frozenset(_unpack("q", row.exact)),
                frozenset(_unpack("I", row.shingles)),
                frozenset(_unpack("I", row.names)),
            )
            for row in self._conn.execute(query)
        ]

    def series_candidates(self, source_id: str, since: datetime) -> Sequence[SeriesCandidate]:
        s = story_entries.c
        query = select(
            s.entry_id, s.series_id, s.series_part, s.kicker, s.published_at, s.vector
        ).where(s.source_id == source_id, s.published_at >= since, s.series_id.is_not(None))
        return [
            SeriesCandidate(
                row.entry_id,
                row.series_id,
                row.series_part,
                row.kicker,
                row.published_at,
                _vector(row.vector),
            )
            for row in self._conn.execute(query)
        ]

    def related_candidates(
        self, terms: Sequence[int], since: datetime
    ) -> Sequence[RelatedCandidate]:
        if not terms:
            return []
        t = story_terms.c
        latest = [
            select(t.entry_id)
            .where(t.term == term, t.published_at >= since)
            .order_by(t.published_at.desc())
            .limit(CANDIDATES_PER_TERM)
            .subquery()
            .select()
            for term in terms
        ]
        matched = union_all(*latest).subquery()
        s = story_entries.c
        query = select(s.entry_id, s.cluster_id, s.series_id, s.published_at, s.vector).where(
            s.entry_id.in_(select(matched.c.entry_id))
        )
        return [
            RelatedCandidate(
                row.entry_id, row.cluster_id, row.series_id, row.published_at, _vector(row.vector)
            )
            for row in self._conn.execute(query)
        ]

    def add(self, detection: Detection) -> list[int]:
        """Write what was decided about a new entry; return the entries whose items changed."""
        conn, f = self._conn, detection.features
        entry_id, published = f.entry_id, f.published
        series = detection.series
        conn.execute(
            story_entries.insert(),
            {
                "entry_id": entry_id,
                "source_id": f.source_id,
                "published_at": published,
                "cluster_id": detection.cluster.cluster_id,
                "series_id": series.series_id if series else None,
                "series_part": series.part if series else None,
                "kicker": f.marker.kicker if f.marker else "",
                "exact": _pack("q", sorted(f.exact_keys)),
                "shingles": _pack("I", sorted(f.shingles)),
                "names": _pack("I", sorted(f.names)),
                "vector": _pack_vector(detection.vector),
                "revision": 0,
            },
        )
        keys = dict.fromkeys((*f.band_keys, *f.exact_keys))
        if keys:
            conn.execute(
                insert(conn, story_bands).on_conflict_do_nothing(),
                [{"band_key": k, "entry_id": entry_id, "published_at": published} for k in keys],
            )
        posted = term_vectors.heaviest_terms(detection.vector, term_vectors.POSTED_TERMS)
        if posted:
            conn.execute(
                story_terms.insert(),
                [{"term": t, "entry_id": entry_id, "published_at": published} for t in posted],
            )
        if f.terms:
            upsert = insert(conn, story_term_counts)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["term"], set_={"count": story_term_counts.c.count + 1}
                ),
                [{"term": term, "count": 1} for term in f.terms],
            )
        if detection.related:
            conn.execute(
                story_related.insert(),
                [
                    {
                        "entry_id": entry_id,
                        "rank": rank,
                        "related_id": r.entry_id,
                        "similarity": r.similarity,
                    }
                    for rank, r in enumerate(detection.related)
                ],
            )
        self._size += 1
        return [entry_id, *self._touch(detection)]

    def _touch(self, detection: Detection) -> list[int]:
        """Raise the story revision of the entries whose items show the new one, and mark
        them unfiled so their feeds are regenerated."""
        s = story_entries.c
        entry_id = detection.features.entry_id
        others = []
        if detection.cluster.matched is not None:
            others.append(s.cluster_id == detection.cluster.cluster_id)
        if detection.series is not None and detection.series.matched is not None:
            others.append(s.series_id == detection.series.series_id)
        if not others:
            return []
        ids = list(
            self._conn.execute(
                select(s.entry_id).where(or_(*others), s.entry_id != entry_id)
            ).scalars()
        )
        if ids:
            self._conn.execute(
                update(story_entries).where(s.entry_id.in_(ids)).values(revision=s.revision + 1)
            )
            self._conn.execute(update(entries).where(entries.c.id.in_(ids)).values(filed=False))
        return ids


def _contexts(conn: Connection, ids: list[int]) -> dict[int, StoryContext]:
    s = story_entries.c
    own = {
        row.entry_id: row
        for row in conn.execute(
            select(
                s.entry_id, s.source_id, s.cluster_id, s.series_id, s.series_part, s.revision
            ).where(s.entry_id.in_(ids))
        )
    }
    if not own:
        return {}
    clusters = {row.cluster_id for row in own.values()}
    series_ids = {row.series_id for row in own.values() if row.series_id is not None}
    members: dict[int, list[tuple[int, str]]] = {}
    for member in conn.execute(
        select(s.cluster_id, s.entry_id, s.source_id).where(s.cluster_id.in_(list(clusters)))
    ):
        members.setdefault(member.cluster_id, []).append((member.entry_id, member.source_id))
    parts: dict[int, list[tuple[int, int]]] = {}
    if series_ids:
        for part in conn.execute(
            select(s.series_id, s.entry_id, s.series_part).where(s.series_id.in_(list(series_ids)))
        ):
            parts.setdefault(part.series_id, []).append((part.series_part, part.entry_id))
    related: dict[int, list[int]] = {}
    for link in conn.execute(
        select(story_related.c.entry_id, story_related.c.related_id)
        .where(story_related.c.entry_id.in_(list(own)))
        .order_by(story_related.c.entry_id, story_related.c.rank)
    ):
        related.setdefault(link.entry_id, []).append(link.related_id)
    wanted = (
        {e for m in members.values() for e, _ in m}
        | {e for p in parts.values() for _, e in p}
        | {e for r in related.values() for e in r}
    )
    refs = _refs(conn, wanted)
    contexts = {}
    for entry_id, row in own.items():
        series = None
        if row.series_id is not None:
            ordered = sorted((p, e) for p, e in parts.get(row.series_id, ()) if e in refs)
            first = refs.get(row.series_id) or (refs[ordered[0][1]] if ordered else None)
            series = SeriesContext(
                id=row.series_id,
                title=first.entry.title if first else "",
                part=row.series_part,
                parts=tuple((p, refs[e]) for p, e in ordered),
            )
        # Other outlets' reports of the story, first published first; the outlet's own
        # copies (a twin in another of its feeds) are not "also reported by".
        also = sorted(
            (refs[e] for e, source in members.get(row.cluster_id, ()) if e in refs),
            key=lambda ref: (ref.entry.date, ref.entry.id),
        )
        contexts[entry_id] = StoryContext(
            series=series,
            related=tuple(refs[e] for e in related.get(entry_id, ()) if e in refs),
            also_reported_by=tuple(
                ref for ref in _one_per_source(also) if ref.entry.source_id != row.source_id
            ),
            cluster_id=row.cluster_id,
            cluster=tuple(ref.entry.id for ref in also),
            revision=row.revision,
        )
    return contexts


def _one_per_source(refs: Iterable[StoryRef]) -> list[StoryRef]:
    seen: set[str] = set()
    kept = []
    for ref in refs:
        if ref.entry.source_id not in seen:
            seen.add(ref.entry.source_id)
            kept.append(ref)
    return kept


def _refs(conn: Connection, ids: set[int]) -> dict[int, StoryRef]:
    found: dict[int, StoryRef] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        query = (
            select(entries, func.coalesce(sources.c.title, sources.c.id).label("source_name"))
            .join(sources, sources.c.id == entries.c.source_id)
            .where(entries.c.id.in_(wanted[start : start + 500]))
        )
        for row in conn.execute(query):
            entry: Entry = to_entry(row)
            found[entry.id] = StoryRef(entry, row.source_name)
    return found


def _pack(code: str, values: Sequence[int]) -> bytes:
    packed = array(code, values)
    if not _LITTLE:
        packed.byteswap()
    return packed.tobytes()


def _unpack(code: str, data: bytes) -> array[int]:
    values = array(code)
    values.frombytes(data)
    if not _LITTLE:
        values.byteswap()
    return values


def _pack_vector(vector: TermVector) -> bytes:
    terms = list(vector.weights)
    weights = array("f", (vector.weights[t] for t in terms))
    if not _LITTLE:
        weights.byteswap()
    return _pack("q", terms) + weights.tobytes()


def _vector(data: bytes) -> TermVector:
    count = len(data) // 12
    terms = _unpack("q", data[: count * 8])
    weights = array("f")
    weights.frombytes(data[count * 8 :])
    if not _LITTLE:
        weights.byteswap()
    return TermVector(dict(zip(terms, weights, strict=True)))
