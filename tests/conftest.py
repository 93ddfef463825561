"""Fixtures every test layer shares: a clock, config files, and a store on each backend.

The PostgreSQL tests run against FEEDSVC_TEST_PG (default: the local server's
database ``test``), each in a schema of its own. They fail, never skip, when it is
unreachable: CI must not turn green without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedsvc.store import Store

PG_URL = os.environ.get("FEEDSVC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def pg_engine() -> sa.Engine:
    url = sa.make_url(PG_URL).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, poolclass=sa.NullPool)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = pg_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable (it is required): {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'feedsvc.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()
