"""The search index: SQLite FTS5 or PostgreSQL full text over the folded words of entries.

Both hold, per entry, the words ``search.index_text`` makes of its title and
body, folded (``"Đà Nẵng"`` is indexed ``da nang``), so the two engines see the
same tokens and find the same entries. They only *find*: :meth:`SearchIndex.search`
reads the newest :data:`~feedsvc.search.CANDIDATES` matches (by entry id, newest
first: a bounded read however common the words) and ``search.rank`` orders
them, the same way on both.

=========  ==================================================================
SQLite     ``entry_search``, an FTS5 table (``unicode61``, diacritics kept:
           the text is folded already; prefix indexes of 2 and 3 characters);
           rowid = entry id. A regular FTS5 table: SQLite 3.40 has no
           ``contentless_delete``, and an edit must replace a row.
PostgreSQL ``entry_search (entry_id, doc tsvector)``, ``to_tsvector('simple', …)``,
           a GIN index; a foreign key removes it with its entry.
=========  ==================================================================

The index is written in the transaction that stores or edits the entry
(:func:`write`, from ``store.entries``) and removed with it (:func:`remove`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text

from feedsvc import search
from feedsvc.search.fold import BODY_CHARS
from feedsvc.search.hit import SearchHit, make_hit
from feedsvc.store.categories import to_entry
from feedsvc.store.engine import reading
from feedsvc.store.schema import entries, settings, sources

PURGED = "entries.purged_at"
"""The settings key retention moves when it deletes entries (the cache validator sees it)."""

_SQLITE_MATCH = (
    "SELECT rowid FROM entry_search WHERE entry_search MATCH :q{category}"
    " ORDER BY rowid DESC LIMIT :n"
)
_PG_MATCH = (
    "SELECT entry_id FROM entry_search WHERE doc @@ to_tsquery('simple', :q){category}"
    " ORDER BY entry_id DESC LIMIT :n"
)
_IN_CATEGORY = (
    " AND EXISTS (SELECT 1 FROM entry_categories c"
    " WHERE c.entry_id = {id} AND c.category_id = :category)"
)


class SearchIndex:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search(
        self, query: search.Query, category: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """The entries matching ``query`` (in ``category``, if given), best first.

        An empty query finds nothing. Relevance is decided among the newest
        :data:`~feedsvc.search.CANDIDATES` matches (``search.rank``).
        """
        if not query or limit <= 0:
            return []
        with reading(self._engine) as conn:
            ids = _match(conn, query, category)
            candidates = _candidates(conn, ids)
            ranked = search.rank(query, candidates, limit)
            found = _entries(conn, [r.entry_id for r in ranked])
        return [make_hit(query, *found[r.entry_id], r) for r in ranked if r.entry_id in found]

    def version(self) -> str:
        """Changes whenever a search's results may: an entry stored, edited or deleted."""
        with reading(self._engine) as conn:
            newest = conn.execute(select(func.max(entries.c.id))).scalar()
            edited = conn.execute(select(func.max(entries.c.changed_at))).scalar()
            purged = conn.execute(select(settings.c.value).where(settings.c.key == PURGED)).scalar()
        return f"{newest}/{edited.isoformat() if edited else ''}/{purged or ''}"

    def size(self) -> int:
        """Bytes the index takes on disk (PostgreSQL: table and indexes; SQLite: via dbstat)."""
        with reading(self._engine) as conn:
            if conn.dialect.name == "postgresql":
                sql = "SELECT pg_total_relation_size('entry_search')"
            else:
                sql = "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'entry_search%'"
            return int(conn.execute(text(sql)).scalar() or 0)


def write(conn: Connection, docs: Iterable[tuple[int, str, str, str]]) -> None:
    """Index each ``(entry_id, title, summary, content)``, replacing what it had."""
    rows: list[dict[str, Any]] = [
        {"id": entry_id, "doc": search.index_text(title, search.entry_body(summary, content))}
        for entry_id, title, summary, content in docs
    ]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO entry_search (entry_id, doc) VALUES (:id, to_tsvector('simple', :doc))"
                " ON CONFLICT (entry_id) DO UPDATE SET doc = EXCLUDED.doc"
            ),
            rows,
        )
        return
    remove(conn, [row["id"] for row in rows])
    conn.execute(text("INSERT INTO entry_search (rowid, doc) VALUES (:id, :doc)"), rows)


def remove(conn: Connection, entry_ids: Sequence[int]) -> None:
    """Take entries out of the index (they are being deleted, or re-indexed)."""
    if not entry_ids:
        return
    column = "entry_id" if conn.dialect.name == "postgresql" else "rowid"
    statement = text(f"DELETE FROM entry_search WHERE {column} IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    conn.execute(statement, {"ids": list(entry_ids)})


def rebuild(conn: Connection, batch: int = 1000) -> int:
    """Index every stored entry (``feedsvc db upgrade`` on a database that holds some)."""
    last, done = 0, 0
    while True:
        rows = conn.execute(
            select(entries.c.id, entries.c.title, entries.c.summary, entries.c.content)
            .where(entries.c.id > last)
            .order_by(entries.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        write(conn, [tuple(row) for row in rows])
        last, done = rows[-1].id, done + len(rows)


def _match(conn: Connection, query: search.Query, category: str | None) -> list[int]:
    postgres = conn.dialect.name == "postgresql"
    id_column = "entry_search.entry_id" if postgres else "entry_search.rowid"
    where = _IN_CATEGORY.format(id=id_column) if category else ""
    sql = (_PG_MATCH if postgres else _SQLITE_MATCH).format(category=where)
    params: dict[str, Any] = {
        "q": query.tsquery() if postgres else query.fts5(),
        "n": search.CANDIDATES,
    }
    if category:
        params["category"] = category
    return list(conn.execute(text(sql), params).scalars())


def _candidates(conn: Connection, ids: list[int]) -> list[search.Candidate]:
    if not ids:
        return []
    rows = conn.execute(
        select(
            entries.c.id,
            entries.c.title,
            entries.c.summary,
            func.substr(entries.c.content, 1, BODY_CHARS).label("content"),
            entries.c.published_at,
            entries.c.first_seen_at,
        ).where(entries.c.id.in_(ids))
    )
    return [
        search.Candidate(
            row.id,
            row.title,
            search.entry_body(row.summary, row.content),
            row.published_at or row.first_seen_at,
        )
        for row in rows
    ]


def _entries(conn: Connection, ids: list[int]) -> dict[int, tuple[Any, str]]:
    if not ids:
        return {}
    rows = conn.execute(
        select(entries, sources.c.title.label("source_title"))
        .join(sources, sources.c.id == entries.c.source_id)
        .where(entries.c.id.in_(ids))
    )
    return {row.id: (to_entry(row), row.source_title or row.source_id) for row in rows}
