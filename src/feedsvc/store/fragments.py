"""Entry fragments: each entry's element in each feed format, cached beside the documents.

One row per (entry, format), overwritten when the entry's revision or the
feed's context key (``publish.fragments.context_key``) moves on, so the table
never holds more than the entries times the formats. Rows go with their entry
(a foreign key ``ON DELETE CASCADE``): retention purges them with it, and an
entry id SQLite reuses never finds an old entry's fragment.

Several processes may render the same entry at once: writes are upserts that
never put an older revision over a newer one, taken in key order so that two
writers cannot deadlock. A cache write that loses a race with a purge (the entry
is gone) is dropped: the cache is only ever an optimisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from feedsvc.model import Fragment
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import entries, fragments


class FragmentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(
        self, entry_ids: Sequence[int], formats: Iterable[str], context: str
    ) -> dict[tuple[int, str], Fragment]:
        """The stored fragments of these entries in ``formats`` under ``context``, by
        (entry id, format), whatever their revision (the caller compares it)."""
        if not entry_ids:
            return {}
        query = select(fragments).where(
            fragments.c.entry_id.in_(list(entry_ids)),
            fragments.c.format.in_(list(formats)),
            fragments.c.context == context,
        )
        with reading(self._engine) as conn:
            return {(row.entry_id, row.format): _fragment(row) for row in conn.execute(query)}

    def put(self, built: Sequence[Fragment], context: str) -> int:
        """Store ``built`` under ``context``; returns how many rows were written."""
        if not built:
            return 0
        ordered = sorted(built, key=lambda f: (f.entry_id, f.format))
        try:
            with writing(self._engine) as conn:
                ids = {f.entry_id for f in ordered}
                alive = set(
                    conn.execute(select(entries.c.id).where(entries.c.id.in_(ids))).scalars()
                )
                rows = [_row(f, context) for f in ordered if f.entry_id in alive]
                if rows:
                    upsert = insert(conn, fragments)
                    newer = {name: upsert.excluded[name] for name in _UPDATED}
                    conn.execute(
                        upsert.on_conflict_do_update(
                            index_elements=["entry_id", "format"],
                            set_=newer,
                            where=fragments.c.revision <= upsert.excluded.revision,
                        ),
                        rows,
                    )
        except IntegrityError:  # an entry purged by another process since it was read
            return 0
        return len(rows)

    def count(self) -> int:
        with reading(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(fragments)).scalar_one())


_UPDATED = ("revision", "context", "item_id", "published_at", "updated_at", "body")


def _row(fragment: Fragment, context: str) -> dict[str, object]:
    return {
        "entry_id": fragment.entry_id,
        "format": fragment.format,
        "revision": fragment.revision,
        "context": context,
        "item_id": fragment.item_id,
        "published_at": fragment.published,
        "updated_at": fragment.updated,
        "body": fragment.body,
    }


def _fragment(row: Any) -> Fragment:
    return Fragment(
        entry_id=row.entry_id,
        revision=row.revision,
        format=row.format,
        item_id=row.item_id,
        published=row.published_at,
        updated=row.updated_at,
        body=row.body,
    )
