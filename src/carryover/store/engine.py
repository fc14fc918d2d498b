"""Engines: one SQLAlchemy engine per database URL, tuned for each backend.

SQLite (the embedded default) is a single file that several OS processes may
write at once (the API, a CDR import, the CLI). Its defaults fail such writers
mid-transaction with "database is locked", so every SQLite connection gets:
- WAL journal mode: readers never block the writer, nor the writer readers;
- synchronous=NORMAL: durable at each checkpoint, safe against corruption in WAL;
- a busy timeout: a writer waits for the lock instead of failing at once;
- foreign keys enforced;
- a statement timeout (`statement_timeout`, as PostgreSQL's below): a progress
  handler interrupts a statement that has run longer, timed from its start (every
  statement SQLAlchemy sends, and those of the bulk writers' DBAPI cursor,
  `statement_started`); idle time between statements does not count;
- BEGIN IMMEDIATE: the write lock is taken when the transaction starts, so two
  writers queue at BEGIN. A deferred BEGIN would let both read, and the second
  to write would fail with SQLITE_BUSY without waiting (its snapshot is stale).
  This is SQLAlchemy's documented recipe for pysqlite: turn off the driver's own
  transaction handling (isolation_level = None) and emit BEGIN from the `begin`
  event. It also makes DDL and SAVEPOINTs transactional on SQLite.
A transaction that only reads may ask for a plain (deferred) BEGIN, which does
not queue behind writers: use `read_only(engine)`.

PostgreSQL uses its own `statement_timeout` on every connection. A statement
cancelled by either is recognized by `is_statement_timeout`, so the CLI and the
API say the same thing whichever backend ran it.

PostgreSQL uses psycopg 3; a bare `postgresql://` URL is read as
`postgresql+psycopg://`. psycopg is the `postgres` extra: a SQLite install runs
without it, and a PostgreSQL URL without it is refused with one line saying what
to install.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

READ_ONLY_OPTION = "carryover_read_only"
_CLOCK = "carryover_statement_clock"  # a connection record's info key
# SQLite calls the progress handler every this many virtual machine instructions:
# about a tenth of a millisecond of work, so the check costs nothing measurable.
_PROGRESS_STEPS = 10_000

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
    `statement_timeout` (seconds, 0: none): no one statement holds the database
    longer (PostgreSQL's `statement_timeout`; a progress handler on SQLite).
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


# What the CLI says of a statement the timeout cancelled, whichever backend ran it.
STATEMENT_TIMEOUT = ("a statement ran longer than the statement timeout "
                     "(statement_timeout_seconds) and was cancelled; its transaction was "
                     "rolled back")


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether `exc` (a driver's error, or SQLAlchemy's wrapping it) is a statement
    cancelled by the statement timeout, on either backend."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.OperationalError):
        # Only the progress handler below interrupts: carryover never calls interrupt().
        return str(orig) == "interrupted"
    return (getattr(orig, "sqlstate", None) == "57014"  # query_canceled
            and "statement timeout" in str(orig))


def statement_started(conn: Any) -> None:
    """Start the SQLite statement clock of `conn` (a SQLAlchemy connection) for a
    statement sent on its DBAPI cursor, which SQLAlchemy's events do not see."""
    clock = conn.connection.info.get(_CLOCK)
    if clock is not None:
        clock.start()


def timed_rows(conn: Any, rows: Iterable[Any]) -> Iterable[Any]:
    """`rows` for an executemany on `conn`'s DBAPI cursor, each row timed as a
    statement of its own (as PostgreSQL times each row's), when SQLite has a clock."""
    clock = conn.connection.info.get(_CLOCK)
    return rows if clock is None else clock.each(rows)


ROWS_PER_START = 64


class _StatementClock:
    """When the running statement of one SQLite connection must stop (None: never)."""

    __slots__ = ("deadline", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout, self.deadline = timeout, None

    def start(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def stop(self) -> None:
        self.deadline = None

    def each(self, rows: Iterable[Any]) -> Iterator[Any]:
        # The clock restarts every ROWS_PER_START rows, not every row: reading it cost
        # as much as inserting a small row. A row then has the timeout less the time of
        # at most ROWS_PER_START - 1 quick rows before it (microseconds each).
        for n, row in enumerate(rows):
            if n % ROWS_PER_START == 0:
                self.start()
            yield row

    def expired(self) -> int:
        # sqlite3 interrupts the statement when the handler returns non-zero.
        return int(self.deadline is not None and time.monotonic() > self.deadline)


def _create(url: URL, *, echo: bool, busy_timeout: float, statement_timeout: float = 0,
            ) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _create_sqlite(url, echo=echo, busy_timeout=busy_timeout,
                              statement_timeout=statement_timeout)
    args = ({"options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
            if statement_timeout > 0 else {})
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=args)


def _create_sqlite(url: URL, *, echo: bool, busy_timeout: float,
                   statement_timeout: float = 0) -> Engine:
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
        if statement_timeout > 0:
            clock = _record.info[_CLOCK] = _StatementClock(statement_timeout)
            dbapi_connection.set_progress_handler(clock.expired, _PROGRESS_STEPS)

    if statement_timeout > 0:
        _time_statements(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _time_statements(engine: Engine) -> None:
    """Time each statement from its start; nothing runs on a stale clock.

    A result's rows are fetched after `before_cursor_execute`, so the clock keeps
    running until the next statement starts it again; a commit or rollback (which
    the driver sends itself) gets a clock of its own, and a connection handed out
    of or back to the pool none, so a DBAPI user that never starts it (the WAL
    checkpointer) is never interrupted.
    """

    def started(conn: Any, *_args: Any) -> None:
        statement_started(conn)

    for name in ("before_cursor_execute", "commit", "rollback"):
        event.listen(engine, name, started)

    @event.listens_for(engine, "do_executemany")
    def _each_row(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        cursor.executemany(statement, timed_rows(context.root_connection, parameters))
        return True  # done here

    def stopped(_dbapi: Any, record: Any, *_args: Any) -> None:
        clock = record.info.get(_CLOCK) if record is not None else None
        if clock is not None:
            clock.stop()

    for name in ("checkout", "checkin"):
        event.listen(engine.pool, name, stopped)
