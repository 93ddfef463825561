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

An entry whose text is edited, or that retention deletes, is *forgotten*
(:func:`forget`): its rows go, its terms are taken off the term counts (the
IDF's document frequencies), and the members of its cluster and series and the
entries listing it as related are touched as above, since what their items show
of it changes. An edited entry is then pending again, and the next detection
decides its story from its new text; an edit to an entry first seen longer ago
than ``DETECTED_WITHIN`` keeps its old rows (it would not be detected again).
"""

from __future__ import annotations

import sys
from array import array
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)

from feedsvc.model import Entry
from feedsvc.store.categories import to_entry
from feedsvc.store.engine import reading, writing
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
from feedsvc.stories.clusters import CANDIDATES_PER_BAND
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
from feedsvc.stories.related import CANDIDATES_PER_TERM, RELATED_WINDOW

BATCH = 200  # entries detected per transaction
DETECTED_WITHIN = RELATED_WINDOW  # older entries are past every story window: not detected
CACHED_CANDIDATES = 4096  # of each kind, per process (a vector is a few KB)
_V = TypeVar("_V")
_LOCK = 0x5EED_5709  # the advisory lock key of detection on PostgreSQL
_LITTLE = sys.byteorder == "little"
_DISPLAY_DATE = func.coalesce(entries.c.published_at, entries.c.first_seen_at, type_=UTCDateTime())


class _Lru(OrderedDict[int, _V]):
    """A dict that forgets its least recently used keys beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def __getitem__(self, key: int) -> _V:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: int, value: _V) -> None:
        super().__setitem__(key, value)
        if len(self) > self.capacity:
            self.popitem(last=False)


class CandidateCache:
    """Candidates decoded from their rows, by entry id, for the process's later lookups.

    What a candidate holds (source, date, cluster, series, hashes, vector) is written
    once with its row and never changed, so a copy is never stale, in any process;
    popular candidates come back for entry after entry, and decoding their blobs was
    a large part of the cost.
    """

    def __init__(self, capacity: int = CACHED_CANDIDATES) -> None:
        self.clusters: _Lru[ClusterCandidate] = _Lru(capacity)
        self.related: _Lru[RelatedCandidate] = _Lru(capacity)


class StoryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache = CandidateCache()

    def detect_pending(self, now: datetime, *, batch: int = BATCH) -> list[int]:
        """Detect every entry without story rows; return the ids of the entries whose
        feed items changed (the new ones and the members whose story they joined)."""
        changed: list[int] = []
        while True:
            with writing(self._engine) as conn:
                lock(conn)
                pending = _pending(conn, batch, now - DETECTED_WITHIN)
                if not pending:
                    return changed
                index = SqlIndex(conn, self._cache)
                for story in pending:
                    changed += index.add(detect(story, index, now=now))
                index.flush()
            if len(pending) < batch:
                return changed

    def pending(self, now: datetime) -> int:
        """How many stored entries detection still owes (see ``_undetected``)."""
        query = select(func.count()).select_from(entries).where(_undetected(now - DETECTED_WITHIN))
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


def _undetected(since: datetime) -> Any:
    """Entries detection still owes: news (not a new source's backlog) first seen since
    ``since``, with no story row. Older entries and backlog are never detected: a
    backfill over a large store costs hours, and they are past every story window."""
    return and_(
        entries.c.first_seen_at >= since,
        entries.c.backlog.is_(False),
        ~_detected(),
    )


def _pending(conn: Connection, limit: int, since: datetime) -> list[StoryText]:
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
        .where(_undetected(since))
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
    """``stories.detect.StoryIndex`` over one connection's transaction; ``add`` writes,
    and ``flush`` writes the term counts the batch's entries added (kept until then).

    The hot path of detection: a handful of statements per entry, written as plain
    SQL on the driver's cursor (building SQLAlchemy statements cost more than running
    them), the same text for SQLite and PostgreSQL but for the placeholders.
    """

    def __init__(self, conn: Connection, cache: CandidateCache | None = None) -> None:
        self._conn = conn
        self._cache = cache or CandidateCache()
        self._counts: dict[int, int] = {}
        self._cursor = conn.connection.cursor()
        self._pg = conn.dialect.name == "postgresql"
        self._size = int(self._rows("SELECT count(*) FROM story_entries", ())[0][0])

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def _when(self, moment: datetime) -> Any:
        """A timestamp as the column stores it (SQLite: SQLAlchemy's naive UTC text)."""
        if self._pg:
            return moment
        return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _read_when(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def size(self) -> int:
        return self._size

    def frequencies(self, terms: Iterable[int]) -> Mapping[int, int]:
        wanted = list(terms)
        found: dict[int, int] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            sql = f"SELECT term, count FROM story_term_counts WHERE term IN ({_marks(chunk)})"
            found.update((int(t), int(c)) for t, c in self._rows(sql, chunk))
        pending = self._counts
        for term in wanted:
            if term in pending:
                found[term] = found.get(term, 0) + pending[term]
        return found

    def flush(self) -> None:
        """Write the batch's term counts: one upsert per distinct term, not per entry."""
        counts, self._counts = self._counts, {}
        self._many(
            "INSERT INTO story_term_counts (term, count) VALUES (?, ?)"
            " ON CONFLICT (term) DO UPDATE SET count = story_term_counts.count + excluded.count",
            sorted(counts.items()),  # in key order: two writers never deadlock
        )

    def cluster_candidates(
        self, bands: Collection[int], exact: Collection[int], since: datetime
    ) -> Sequence[ClusterCandidate]:
        parts: list[str] = []
        params: list[Any] = []
        when = self._when(since)
        for n, key in enumerate(bands):  # the newest few per key (clusters.CANDIDATES_PER_BAND)
            parts.append(
                "SELECT entry_id FROM (SELECT entry_id FROM story_bands WHERE band_key = ?"
                f" AND published_at >= ? ORDER BY entry_id DESC LIMIT {CANDIDATES_PER_BAND})"
                f" AS b{n}"
            )
            params += [key, when]
        if exact:
            parts.append(f"SELECT entry_id FROM story_bands WHERE band_key IN ({_marks(exact)})")
            params += list(exact)
        if not parts:
            return []
        ids = [row[0] for row in self._rows(" UNION ".join(parts), params)]
        cache = self._cache.clusters
        missing = [entry_id for entry_id in ids if entry_id not in cache]
        for start in range(0, len(missing), 900):
            chunk = missing[start : start + 900]
            sql = (
                "SELECT entry_id, source_id, published_at, cluster_id, exact, shingles, names"
                f" FROM story_entries WHERE entry_id IN ({_marks(chunk)})"
            )
            for entry_id, source_id, published, cluster_id, keys, shingles, names in self._rows(
                sql, chunk
            ):
                cache[entry_id] = ClusterCandidate(
                    entry_id,
                    source_id,
                    self._read_when(published),
                    cluster_id,
                    frozenset(_unpack("q", keys)),
                    frozenset(_unpack("I", shingles)),
                    frozenset(_unpack("I", names)),
                )
        return [cache[entry_id] for entry_id in ids if entry_id in cache]

    def series_candidates(self, source_id: str, since: datetime) -> Sequence[SeriesCandidate]:
        sql = (
            "SELECT entry_id, series_id, series_part, kicker, published_at, vector"
            " FROM story_entries WHERE source_id = ? AND published_at >= ?"
            " AND series_id IS NOT NULL"
        )
        return [
            SeriesCandidate(
                entry_id, series_id, part, kicker, self._read_when(published), _vector(vector)
            )
            for entry_id, series_id, part, kicker, published, vector in self._rows(
                sql, (source_id, self._when(since))
            )
        ]

    def related_candidates(
        self, terms: Sequence[int], since: datetime
    ) -> Sequence[RelatedCandidate]:
        if not terms:
            return []
        latest = " UNION ".join(
            f"SELECT entry_id FROM (SELECT entry_id FROM story_terms WHERE term = ?"
            f" AND published_at >= ? ORDER BY published_at DESC LIMIT {CANDIDATES_PER_TERM})"
            f" AS t{n}"
            for n in range(len(terms))
        )
        when = self._when(since)
        ids = [row[0] for row in self._rows(latest, [v for t in terms for v in (t, when)])]
        cache = self._cache.related
        missing = [entry_id for entry_id in dict.fromkeys(ids) if entry_id not in cache]
        for start in range(0, len(missing), 900):
            chunk = missing[start : start + 900]
            sql = (
                "SELECT entry_id, cluster_id, series_id, published_at, vector"
                f" FROM story_entries WHERE entry_id IN ({_marks(chunk)})"
            )
            for entry_id, cluster_id, series_id, published, vector in self._rows(sql, chunk):
                cache[entry_id] = RelatedCandidate(
                    entry_id, cluster_id, series_id, self._read_when(published), _vector(vector)
                )
        return [cache[entry_id] for entry_id in dict.fromkeys(ids) if entry_id in cache]

    def add(self, detection: Detection) -> list[int]:
        """Write what was decided about a new entry; return the entries whose items changed."""
        f = detection.features
        entry_id, published = f.entry_id, self._when(f.published)
        series = detection.series
        self._many(
            "INSERT INTO story_entries (entry_id, source_id, published_at, cluster_id,"
            " series_id, series_part, kicker, exact, shingles, names, vector, revision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [
                (
                    entry_id,
                    f.source_id,
                    published,
                    detection.cluster.cluster_id,
                    series.series_id if series else None,
                    series.part if series else None,
                    f.marker.kicker if f.marker else "",
                    _pack("q", sorted(f.exact_keys)),
                    _pack("I", sorted(f.shingles)),
                    _pack("I", sorted(f.names)),
                    _pack_vector(detection.vector),
                )
            ],
        )
        keys = dict.fromkeys((*f.band_keys, *f.exact_keys))
        self._many(
            "INSERT INTO story_bands (band_key, entry_id, published_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(key, entry_id, published) for key in keys],
        )
        posted = term_vectors.heaviest_terms(detection.vector, term_vectors.POSTED_TERMS)
        self._many(
            "INSERT INTO story_terms (term, entry_id, published_at) VALUES (?, ?, ?)",
            [(term, entry_id, published) for term in posted],
        )
        counts = self._counts  # written by flush, at the end of the batch
        for term in f.terms:
            counts[term] = counts.get(term, 0) + 1
        self._many(
            "INSERT INTO story_related (entry_id, rank, related_id, similarity)"
            " VALUES (?, ?, ?, ?)",
            [
                (entry_id, rank, r.entry_id, r.similarity)
                for rank, r in enumerate(detection.related)
            ],
        )
        self._size += 1
        return [entry_id, *self._touch(detection)]

    def _touch(self, detection: Detection) -> list[int]:
        """Raise the story revision of the entries whose items show the new one, and mark
        them unfiled so their feeds are regenerated."""
        entry_id = detection.features.entry_id
        ids: set[int] = set()
        if detection.cluster.matched is not None:
            sql = "SELECT entry_id FROM story_entries WHERE cluster_id = ? AND entry_id <> ?"
            ids.update(row[0] for row in self._rows(sql, (detection.cluster.cluster_id, entry_id)))
        if detection.series is not None and detection.series.matched is not None:
            sql = "SELECT entry_id FROM story_entries WHERE series_id = ? AND entry_id <> ?"
            ids.update(row[0] for row in self._rows(sql, (detection.series.series_id, entry_id)))
        if ids:
            ordered = sorted(ids)
            marks = _marks(ordered)
            self._cursor.execute(
                self._sql(
                    f"UPDATE story_entries SET revision = revision + 1 WHERE entry_id IN ({marks})"
                ),
                ordered,
            )
            self._cursor.execute(
                self._sql(f"UPDATE entries SET filed = ? WHERE id IN ({marks})"), [False, *ordered]
            )
        return sorted(ids)


def lock(conn: Connection) -> None:
    """Take detection's lock for the rest of ``conn``'s transaction (PostgreSQL; SQLite
    has one writer). A writer that also changes entries takes it before its first
    entry row lock, as detection does, so the two never wait for each other in a
    circle."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})


def forget(conn: Connection, entry_ids: Sequence[int], *, since: datetime | None = None) -> None:
    """Drop the story rows of ``entry_ids`` (those first seen since ``since``, if given),
    take their terms off the term counts, and touch the other members of their
    clusters and series and the entries listing them as related (revision up,
    unfiled: their items show the forgotten ones' titles), all in ``conn``'s
    transaction.

    It first takes detection's lock (:func:`lock`), so a batch that is detecting
    one of these entries from its old text commits first and its rows are the
    ones dropped.
    """
    if not entry_ids:
        return
    lock(conn)
    s = story_entries.c
    query = select(s.entry_id, s.cluster_id, s.series_id, s.vector).where(
        s.entry_id.in_(list(entry_ids))
    )
    if since is not None:
        query = query.join(entries, entries.c.id == s.entry_id).where(
            entries.c.first_seen_at >= since
        )
    rows = conn.execute(query).all()
    if not rows:
        return
    gone = sorted(row.entry_id for row in rows)
    counts: dict[int, int] = {}
    for row in rows:  # a vector holds every term of its entry (terms.VECTOR_TERMS)
        for term in _vector(row.vector).weights:
            counts[term] = counts.get(term, 0) + 1
    terms = sorted(counts)  # in key order, as flush writes them: no deadlock
    conn.execute(
        story_term_counts.update()
        .where(story_term_counts.c.term == bindparam("_term"))
        .values(count=story_term_counts.c.count - bindparam("_n")),
        [{"_term": term, "_n": counts[term]} for term in terms],
    )
    for start in range(0, len(terms), 500):
        chunk = terms[start : start + 500]
        conn.execute(
            delete(story_term_counts).where(
                story_term_counts.c.term.in_(chunk), story_term_counts.c.count <= 0
            )
        )
    clusters = {row.cluster_id for row in rows}
    series = {row.series_id for row in rows if row.series_id is not None}
    members = select(s.entry_id).where(
        or_(s.cluster_id.in_(list(clusters)), s.series_id.in_(list(series)))
    )
    referrers = select(story_related.c.entry_id).where(story_related.c.related_id.in_(gone))
    touched = sorted(
        {*conn.execute(members).scalars(), *conn.execute(referrers).scalars()} - set(gone)
    )
    for table in (story_related, story_terms, story_bands, story_entries):
        conn.execute(delete(table).where(table.c.entry_id.in_(gone)))
    if touched:
        conn.execute(
            update(story_entries).where(s.entry_id.in_(touched)).values(revision=s.revision + 1)
        )
        conn.execute(update(entries).where(entries.c.id.in_(touched)).values(filed=False))


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


def _marks(values: Collection[object]) -> str:
    return ",".join("?" * len(values))


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
