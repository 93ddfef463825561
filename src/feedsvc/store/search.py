"""The search index: SQLite FTS5 or PostgreSQL full text over the folded words of entries.

Both hold, per entry, the words ``search.index_text`` makes of its title and
body, folded (``"Đà Nẵng"`` is indexed ``da nang``), so the two engines see the
same tokens and find the same entries. They only *find*: :meth:`SearchIndex.search`
reads the newest :data:`~feedsvc.search.CANDIDATES` matches (by entry id, newest
first: a bounded read however common the words) with the folded words stored
for each, and ``search.rank`` orders them, the same way on both, without
folding anything again (a query typed with tones also reads the toned text).

=========  ==================================================================
SQLite     ``entry_search``, an FTS5 table (``unicode61``, diacritics kept:
           the text is folded already; prefix indexes of 2 and 3 characters);
           rowid = entry id. A regular FTS5 table: SQLite 3.40 has no
           ``contentless_delete``, and an edit must replace a row.
PostgreSQL ``entry_search (entry_id, words, title_words, doc)``: ``doc`` is
           ``to_tsvector('simple', words)`` (generated), with a GIN index; a
           foreign key removes the row with its entry.
=========  ==================================================================

The index is written in the transaction that stores or edits the entry
(:func:`write`, from ``store.entries``) and removed with it (:func:`remove`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, select, text

from feedsvc import search
from feedsvc.search.fold import BODY_CHARS
from feedsvc.search.hit import SearchHit, make_hit
from feedsvc.store.categories import to_entry
from feedsvc.store.engine import reading
from feedsvc.store.schema import entries, settings, sources

PURGED = "entries.purged_at"
"""The settings key retention moves when it deletes entries (the cache validator sees it)."""

_SQLITE_MATCH = (
    "SELECT rowid, doc, title_words FROM entry_search WHERE entry_search MATCH :q{category}"
    " ORDER BY rowid DESC LIMIT :n"
)
_PG_MATCH = (
    "SELECT entry_id, words, title_words FROM entry_search"
    " WHERE doc @@ to_tsquery('simple', :q){category} ORDER BY entry_id DESC LIMIT :n"
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
            candidates = _match(conn, query, category)
            if search.needs_text(query):
                candidates = _with_text(conn, candidates)
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
    rows: list[dict[str, Any]] = []
    for entry_id, title, summary, content in docs:
        words, title_words = search.index_words(title, search.entry_body(summary, content))
        rows.append({"id": entry_id, "doc": " ".join(words), "title_words": title_words})
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO entry_search (entry_id, words, title_words)"
                " VALUES (:id, :doc, :title_words) ON CONFLICT (entry_id)"
                " DO UPDATE SET words = EXCLUDED.words, title_words = EXCLUDED.title_words"
            ),
            rows,
        )
        return
    remove(conn, [row["id"] for row in rows])
    conn.execute(
        text("INSERT INTO entry_search (rowid, doc, title_words) VALUES (:id, :doc, :title_words)"),
        rows,
    )


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


def _match(conn: Connection, query: search.Query, category: str | None) -> list[search.Candidate]:
    """The newest matches, with the words the index holds for each."""
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
    return [
        search.Candidate(entry_id, words.split(" ", title_words + search.RANK_WORDS), title_words)
        for entry_id, words, title_words in conn.execute(text(sql), params)
    ]


def _with_text(conn: Connection, candidates: list[search.Candidate]) -> list[search.Candidate]:
    """``candidates`` with their toned text, for ranking a query typed with tones."""
    if not candidates:
        return []
    body = case((entries.c.summary == "", func.substr(entries.c.content, 1, BODY_CHARS)), else_="")
    rows = conn.execute(
        select(entries.c.id, entries.c.title, entries.c.summary, body.label("content")).where(
            entries.c.id.in_([c.entry_id for c in candidates])
        )
    )
    texts = {
        row.id: (row.title + "\n" + search.entry_body(row.summary, row.content)).casefold()
        for row in rows
    }
    return [replace(c, toned_text=texts.get(c.entry_id, "")) for c in candidates]


def _entries(conn: Connection, ids: list[int]) -> dict[int, tuple[Any, str]]:
    if not ids:
        return {}
    rows = conn.execute(
        select(entries, sources.c.title.label("source_title"))
        .join(sources, sources.c.id == entries.c.source_id)
        .where(entries.c.id.in_(ids))
    )
    return {row.id: (to_entry(row), row.source_title or row.source_id) for row in rows}
