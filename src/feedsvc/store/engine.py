"""Engines for SQLite (the embedded default) and PostgreSQL (scale-out), set up alike."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing.

    SQLite runs in WAL mode (readers never block the writer), with foreign keys
    on and a busy timeout so a second process waits instead of failing. The
    driver's own transaction handling is turned off so that :func:`writing` can
    start a write transaction with ``BEGIN IMMEDIATE``: taking the write lock
    first means a transaction never has to upgrade from read to write and fail
    half-way with "database is locked".
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(url, parsed.database)
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        _private_database(Path(database))
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def _private_database(path: Path) -> None:
    """Make the SQLite file (and its folder, when missing) readable by this user only.

    It holds every subscriber's address and the keys of their links. SQLite creates
    a file 0644 (less the umask), and its ``-wal`` and ``-shm`` files with the mode
    of the database file; so the file is created here first, 0600, and one left
    world-readable by an older version is tightened, with its companions.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours to change
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (one consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def any_row(engine: Engine, query: Select[Any]) -> bool:
    """Whether ``query`` finds a row, in a read transaction.

    A claim asks this first: a tick that finds nothing due then costs a fraction
    of an empty write transaction, and takes no write lock.
    """
    with reading(engine) as conn:
        return conn.execute(query.limit(1)).first() is not None


def insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update``.

    Several processes may write the same row at once (scale-out on PostgreSQL):
    a plain INSERT would fail the slower one; these let the database decide.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
