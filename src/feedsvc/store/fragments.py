"""Entry fragments: each entry's part of the feed documents, cached beside the documents.

One row per entry, with a column per format, overwritten when the entry's
revision or the feed's context key (``publish.fragments.context_key``) moves
on, so the table never holds more rows than there are entries. Rows go with
their entry (a foreign key ``ON DELETE CASCADE``): retention purges them with
it, and an entry id SQLite reuses never finds an old entry's fragment. The
nightly retention also prunes the fragments of entries that have fallen out of
every feed (:meth:`FragmentStore.prune`).

Several processes may render the same entry at once: writes are upserts that
never put an older revision over a newer one, taken in key order so that two
writers cannot deadlock, and that keep the formats another process rendered
for the same revision and context. A write that loses a race with a purge (the
entry is gone) is dropped: the cache is only ever an optimisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, select
from sqlalchemy.exc import IntegrityError

from feedsvc.model import Fragment
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import entries, entry_categories, fragments

FORMATS = ("rss", "atom", "json")  # a column each
_DATE = func.coalesce(entries.c.published_at, entries.c.first_seen_at)  # a feed's order


class FragmentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(
        self, entry_ids: Sequence[int], formats: Iterable[str], context: str
    ) -> dict[int, Fragment]:
        """The stored fragments of these entries under ``context``, by entry id, with
        the bodies of ``formats`` that are there, whatever their revision (the caller
        compares it)."""
        if not entry_ids:
            return {}
        wanted = [name for name in FORMATS if name in set(formats)]
        columns = [fragments.c[name] for name in (*_KEYS, *wanted)]
        query = select(*columns).where(
            fragments.c.entry_id.in_(list(entry_ids)), fragments.c.context == context
        )
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        return {row[0]: _fragment(row, wanted) for row in rows}

    def put(self, built: Sequence[Fragment], context: str) -> int:
        """Store ``built`` under ``context``; returns how many rows were written."""
        if not built:
            return 0
        ordered = sorted(built, key=lambda fragment: fragment.entry_id)
        try:
            with writing(self._engine) as conn:
                ids = [fragment.entry_id for fragment in ordered]
                alive = set(
                    conn.execute(select(entries.c.id).where(entries.c.id.in_(ids))).scalars()
                )
                rows = [_row(f, context) for f in ordered if f.entry_id in alive]
                if rows:
                    conn.execute(_upsert(conn), rows)
        except IntegrityError:  # an entry purged by another process since it was read
            return 0
        return len(rows)

    def prune(self, keep_per_feed: int) -> int:
        """Forget the fragments of entries no feed can show any more: all but each
        category's and the whole site's ``keep_per_feed`` newest. Returns how many.

        Retention deletes old entries, and their fragments with them; this bounds
        the cache to the entries near the top of some feed, where a purge would
        keep every entry of the retention period (three formats of each).
        """
        newest = _DATE.desc(), entries.c.id.desc()
        with writing(self._engine) as conn:
            keep = set(
                conn.execute(select(entries.c.id).order_by(*newest).limit(keep_per_feed)).scalars()
            )
            filed = select(entry_categories.c.category_id).distinct()
            for category in list(conn.execute(filed).scalars()):
                shown = (
                    select(entries.c.id)
                    .join(entry_categories, entry_categories.c.entry_id == entries.c.id)
                    .where(entry_categories.c.category_id == category)
                    .order_by(*newest)
                    .limit(keep_per_feed)
                )
                keep.update(conn.execute(shown).scalars())
            stored = set(conn.execute(select(fragments.c.entry_id)).scalars())
            doomed = sorted(stored - keep)
            for start in range(0, len(doomed), 1000):
                batch = doomed[start : start + 1000]
                conn.execute(delete(fragments).where(fragments.c.entry_id.in_(batch)))
        return len(doomed)

    def count(self) -> int:
        with reading(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(fragments)).scalar_one())


_KEYS = ("entry_id", "revision", "item_id", "published_at", "updated_at")


def _upsert(conn: Any) -> Any:
    """INSERT, or on an existing row: replace it unless it holds a newer revision, and
    keep the formats not rendered this time when revision and context are the same."""
    upsert = insert(conn, fragments)
    new = upsert.excluded
    same = and_(fragments.c.revision == new.revision, fragments.c.context == new.context)
    replaced = ("revision", "context", "item_id", "published_at", "updated_at")
    values: dict[str, Any] = {name: new[name] for name in replaced}
    for name in FORMATS:
        values[name] = func.coalesce(new[name], case((same, fragments.c[name]), else_=None))
    return upsert.on_conflict_do_update(
        index_elements=["entry_id"], set_=values, where=fragments.c.revision <= new.revision
    )


def _row(fragment: Fragment, context: str) -> dict[str, object]:
    return {
        "entry_id": fragment.entry_id,
        "revision": fragment.revision,
        "context": context,
        "item_id": fragment.item_id,
        "published_at": fragment.published,
        "updated_at": fragment.updated,
        **{name: fragment.bodies.get(name) for name in FORMATS},
    }


def _fragment(row: Any, formats: Sequence[str]) -> Fragment:
    entry_id, revision, item_id, published, updated, *bodies = row
    return Fragment(
        entry_id,
        revision,
        item_id,
        published,
        updated,
        {name: body for name, body in zip(formats, bodies, strict=True) if body is not None},
    )
