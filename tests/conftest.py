"""Shared fixtures: the database tiers (SQLite file, throwaway PostgreSQL database).

`db_url` runs a test once per backend (ids `sqlite` and `postgresql`; the
PostgreSQL run carries the `postgres` marker, so `-m "not postgres"` skips it).
Each test gets an empty database: a new SQLite file, or a freshly emptied
schema in this session's PostgreSQL database. The PostgreSQL database is
created once per session on the server at CARRYOVER_TEST_PG_URL (default: the
local server, user postgres) and dropped at the end. Without a server the
PostgreSQL runs are skipped with the reason, except under CI=true, where they
fail: a CI run must not pass without its PostgreSQL tier.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from carryover.store.engine import dispose_engines, make_engine, normalize_url
from carryover.store.schema import ensure_schema

# Property tests run on a shared 2-core machine: time limits would turn load into
# failures, so no deadlines and no "too slow to generate" check. Everything else
# (including newly found counterexamples) still fails the run.
settings.register_profile("carryover", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("carryover")

PG_BASE_URL = os.environ.get(
    "CARRYOVER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _admin_engine(base: URL) -> Engine:
    # AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction.
    return create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A PostgreSQL database of this session's own, dropped at the end."""
    base = normalize_url(PG_BASE_URL)
    admin = _admin_engine(base)
    name = f"carryover_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server, wrong credentials, no psycopg...
        admin.dispose()
        reason = (f"PostgreSQL tier unavailable at "
                  f"{base.render_as_string(hide_password=True)}: "
                  f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        if _under_ci():
            pytest.fail(f"{reason} (CI=true: the PostgreSQL tier is required)", pytrace=False)
        pytest.skip(reason)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def reset_pg(url: str) -> None:
    """Empty the public schema: every test starts from a database with nothing in it."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # A connection leaked by a test would block the DROP forever: fail instead.
            conn.execute(text("SET lock_timeout = '10s'"))
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'carryover.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
        reset_pg(url)
    try:
        yield url
    finally:
        # Pooled connections would hold locks on the schema the next test drops.
        dispose_engines()


@pytest.fixture
def engine(db_url: str) -> Engine:
    """An engine on an empty database brought to the current schema."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    return engine
