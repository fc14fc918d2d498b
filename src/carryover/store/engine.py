"""Engines: one SQLAlchemy engine per database URL, tuned for each backend.

SQLite (the embedded default) is a single file that several OS processes may
write at once (the API, a CDR import, the CLI). Its defaults fail such writers
mid-transaction with "database is locked", so every SQLite connection gets:
- WAL journal mode: readers never block the writer, nor the writer readers;
- synchronous=NORMAL: durable at each checkpoint, safe against corruption in WAL;
- a busy timeout: a writer waits for the lock instead of failing at once;
- foreign keys enforced;
- BEGIN IMMEDIATE: the write lock is taken when the transaction starts, so two
  writers queue at BEGIN. A deferred BEGIN would let both read, and the second
  to write would fail with SQLITE_BUSY without waiting (its snapshot is stale).
  This is SQLAlchemy's documented recipe for pysqlite: turn off the driver's own
  transaction handling (isolation_level = None) and emit BEGIN from the `begin`
  event. It also makes DDL and SAVEPOINTs transactional on SQLite.
A transaction that only reads may ask for a plain (deferred) BEGIN, which does
not queue behind writers: use `read_only(engine)`.

PostgreSQL uses psycopg 3; a bare `postgresql://` URL is read as
`postgresql+psycopg://`. psycopg is the `postgres` extra: a SQLite install runs
without it, and a PostgreSQL URL without it is refused with one line saying what
to install.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

READ_ONLY_OPTION = "carryover_read_only"

_cache: dict[tuple[str, bool, float, float], Engine] = {}
_lock = threading.Lock()


class UnsupportedDatabase(ValueError):
    """The URL names a database carryover does not run on."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and pick carryover's driver for it (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UnsupportedDatabase(f"not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise UnsupportedDatabase(
            f"carryover uses PostgreSQL through psycopg 3, not "
            f"{parsed.get_driver_name()!r}: write postgresql://user@host/dbname")
    if backend == "postgresql" and importlib.util.find_spec("psycopg") is None:
        raise UnsupportedDatabase(
            "PostgreSQL needs psycopg, which this installation lacks: "
            "pip install 'carryover[postgres]'")
    if backend == "postgresql":
        return parsed
    if backend == "sqlite" and parsed.get_driver_name() != "pysqlite":
        raise UnsupportedDatabase(
            f"carryover uses SQLite through the standard sqlite3 driver, not "
            f"{parsed.get_driver_name()!r}: write sqlite:///path")
    if backend not in ("sqlite", "postgresql"):
        raise UnsupportedDatabase(
            f"carryover runs on sqlite or postgresql, not {backend!r}")
    return parsed


def make_engine(url: str | URL, *, echo: bool = False, busy_timeout: float = 30.0,
                statement_timeout: float = 0) -> Engine:
    """The engine for `url`, created on first use and shared afterwards.

    Creating it opens no connection. `busy_timeout` (seconds) only matters for
    SQLite: how long a writer waits for another writer before failing.
    `statement_timeout` (seconds, 0: none) only for PostgreSQL: every connection's
    `statement_timeout`, so no one statement holds the database longer.
    """
    parsed = normalize_url(url)
    key = (parsed.render_as_string(hide_password=False), bool(echo), float(busy_timeout),
           float(statement_timeout))
    with _lock:
        engine = _cache.get(key)
        if engine is None:
            engine = _create(parsed, echo=echo, busy_timeout=busy_timeout,
                             statement_timeout=statement_timeout)
            _cache[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection of every cached engine and forget them (tests, forks)."""
    with _lock:
        engines = list(_cache.values())
        _cache.clear()
    for engine in engines:
        engine.dispose()


def read_only(engine: Engine) -> Engine:
    """A view of `engine` whose transactions only read: on SQLite they BEGIN DEFERRED.

    Shares the pool and settings of `engine`. A write inside such a transaction
    may fail with "database is locked" on SQLite; use the plain engine to write.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _create(url: URL, *, echo: bool, busy_timeout: float, statement_timeout: float = 0,
            ) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _create_sqlite(url, echo=echo, busy_timeout=busy_timeout)
    args = ({"options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
            if statement_timeout > 0 else {})
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=args)


def _create_sqlite(url: URL, *, echo: bool, busy_timeout: float) -> Engine:
    in_memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)
    engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not BEGIN on its own: we do it in _on_begin below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # A 64 MiB page cache (negative: KiB) keeps the indexes that bulk ingestion
            # touches in memory; the default 2 MiB makes each insert a page fault.
            cursor.execute("PRAGMA cache_size = -65536")
            cursor.execute("PRAGMA temp_store = MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
