"""A raw DBAPI cursor for ingestion's reads and writes: columns in, executemany out.

The per-event repository builds one SQLAlchemy statement per row; at a million
rows that cost dominates. Here rows go to the driver's executemany directly (in
the caller's transaction, on the same connection), instants are formatted once
per column with numpy, and the touched accounts are named through a temporary
table instead of huge IN lists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection

from carryover.domain.buckets import UNLIMITED
from carryover.domain.columnar.state import I64, NEVER, Buckets
from carryover.domain.cycles import CycleCalendar
from carryover.store.engine import statement_started, timed_rows


class Raw:
    """The DBAPI cursor of a SQLAlchemy connection, with '?' placeholders on both backends."""

    def __init__(self, conn: Connection) -> None:
        self.dialect = conn.dialect.name
        self.conn = conn
        self.cursor = conn.connection.dbapi_connection.cursor()

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def run(self, text: str, params: Sequence = ()) -> list[tuple]:
        statement_started(self.conn)  # SQLAlchemy's events do not see this cursor
        self.cursor.execute(self.sql(text), params)
        return self.cursor.fetchall() if self.cursor.description else []

    def many(self, text: str, rows: Sequence[Sequence]) -> int:
        if not rows:
            return 0
        self.cursor.executemany(self.sql(text), timed_rows(self.conn, rows))
        return self.cursor.rowcount

    # -- writing many rows: executemany on SQLite; COPY and one set-based statement on
    # PostgreSQL, where executemany still sends one statement per row (pipelined) and
    # holds every parameter of the chunk at once.
    def append(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> int:
        """Insert `rows` into `table`; returns how many."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            self._copy(table, columns, rows)
            return len(rows)
        return self.many(f"INSERT INTO {table} ({', '.join(columns)}) "
                         f"VALUES ({', '.join('?' * len(columns))})", rows)

    def append_new(self, table: str, columns: Sequence[str], rows: Sequence[Sequence],
                   key: str) -> int:
        """Insert the rows whose unique `key` (columns, comma-separated) is not stored yet;
        returns how many went in."""
        if not rows:
            return 0
        cols = ", ".join(columns)
        if self.dialect == "postgresql":
            # Usually nothing is stored yet: COPY straight in, and only when a key is
            # taken stage the rows and insert what is new, set-based.
            from psycopg.errors import UniqueViolation
            self.cursor.execute("SAVEPOINT ingest_append")
            try:
                self._copy(table, columns, rows)
                self.cursor.execute("RELEASE SAVEPOINT ingest_append")
                return len(rows)
            except UniqueViolation:
                self.cursor.execute("ROLLBACK TO SAVEPOINT ingest_append")
            stage = self._stage(table, columns, rows)
            self.cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                                f"ON CONFLICT ({key}) DO NOTHING")
            return self.cursor.rowcount
        return self.many(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))}) "
                         f"ON CONFLICT ({key}) DO NOTHING", rows)

    def update(self, table: str, keys: Sequence[str], columns: Sequence[str],
               rows: Sequence[Sequence], also: str = "") -> int:
        """Set `columns` of the rows matching `keys`; each row is (*columns, *keys).
        `also`: one more assignment (SQL) for every updated row."""
        if not rows:
            return 0
        extra = f", {also}" if also else ""
        if self.dialect == "postgresql":
            stage = self._stage(table, [*columns, *keys], rows)
            sets = ", ".join(f"{c} = s.{c}" for c in columns)
            where = " AND ".join(f"{table}.{k} = s.{k}" for k in keys)
            self.cursor.execute(f"UPDATE {table} SET {sets}{extra} FROM {stage} s WHERE {where}")
            return self.cursor.rowcount
        sets = ", ".join(f"{c} = ?" for c in columns)
        where = " AND ".join(f"{k} = ?" for k in keys)
        return self.many(f"UPDATE {table} SET {sets}{extra} WHERE {where}", rows)

    def add_to(self, table: str, keys: Sequence[str], column: str,
               rows: Sequence[Sequence]) -> int:
        """Add each row's last value to `column` of the row with its keys, or insert it.
        The keys of `rows` must be distinct."""
        if not rows:
            return 0
        cols = ", ".join([*keys, column])
        conflict = (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE "
                    f"SET {column} = {table}.{column} + excluded.{column}")
        if self.dialect == "postgresql":
            stage = self._stage(table, [*keys, column], rows)
            self.cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                                f"{conflict}")
            return self.cursor.rowcount
        return self.many(f"INSERT INTO {table} ({cols}) VALUES "
                         f"({', '.join('?' * (len(keys) + 1))}) {conflict}", rows)

    def _stage(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> str:
        """A temporary table with these columns of `table` (their types), holding `rows`."""
        name = f"ingest_stage_{table}"
        self.cursor.execute(f"DROP TABLE IF EXISTS {name}")
        self.cursor.execute(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS "
                            f"SELECT {', '.join(columns)} FROM {table} WITH NO DATA")
        self._copy(name, columns, rows)
        return name

    def _copy(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        with self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def instants(self, us: np.ndarray) -> list[str | None]:
        """Instants as the text each backend stores: SQLAlchemy's SQLite format, or ISO
        with a UTC offset for PostgreSQL."""
        never = (us == NEVER) | (us < 0)  # NEVER: no end; negative: not set
        # 'YYYY-MM-DDTHH:MM:SS.ffffff' is 26 characters for every year 1000-9999. The
        # separator and the offset are patched as UCS-4 code points of the whole array,
        # so no Python string is touched before the final tolist().
        text = np.datetime_as_string(np.where(never, 0, us).astype("datetime64[us]"),
                                     unit="us").astype("U26")
        if self.dialect == "sqlite":
            text.view(np.uint32).reshape(len(text), 26)[:, 10] = ord(" ")
        else:
            wide = np.empty(len(text), dtype="U32")
            cells = wide.view(np.uint32).reshape(len(text), 32)
            cells[:, :26] = text.view(np.uint32).reshape(len(text), 26)
            cells[:, 26:] = np.array([ord(c) for c in "+00:00"], dtype=np.uint32)
            text = wide
        out: list[str | None] = text.tolist()
        for i in np.flatnonzero(never).tolist():
            out[i] = None
        return out

    def instant(self, at: datetime | None) -> str | None:
        """One instant in the same text as `instants` (no numpy round trip per value)."""
        if at is None:
            return None
        at = at.astimezone(UTC)
        if self.dialect == "sqlite":
            return at.strftime("%Y-%m-%d %H:%M:%S.%f")
        return at.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def name_accounts(self, ids: Sequence[int]) -> None:
        """Fill the temporary table `ingest_accounts` with these account ids.

        Queries name it first, as `ingest_accounts t CROSS JOIN x`: on SQLite that makes
        it the outer loop, so x is searched by its account index instead of scanned
        whole (a small chunk against a large database); PostgreSQL plans it as any join."""
        self.run("CREATE TEMP TABLE IF NOT EXISTS ingest_accounts (id INTEGER PRIMARY KEY)")
        self.refill("ingest_accounts", ("id",), [(int(i),) for i in ids])

    def refill(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        """Replace the rows of the temporary `table`. On PostgreSQL the table is emptied by
        TRUNCATE (a DELETE leaves dead rows that later joins fetch and skip) and analyzed
        once filled: with no statistics the planner takes a temporary table for a few
        rows and joins it to the chunk's buckets by nested loops."""
        if self.dialect == "postgresql":
            self.run(f"TRUNCATE {table}")
            self.append(table, columns, rows)
            self.run(f"ANALYZE {table}")
            return
        self.run(f"DELETE FROM {table}")
        self.append(table, columns, rows)


def _us(value) -> int:
    if value is None:
        return -1
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_column(values: Sequence) -> list[int]:
    """Stored instants (SQLite text or driver datetimes) as µs since the epoch, -1 for none,
    parsed as one numpy column rather than value by value."""
    if not values:
        return []
    if isinstance(next((v for v in values if v is not None), None), str):
        text = np.array(["NaT" if v is None else v.replace(" ", "T") for v in values])
        parsed = text.astype("datetime64[us]").astype(I64)
        return np.where(np.array([v is None for v in values]), -1, parsed).tolist()
    return [_us(v) for v in values]


def load_accounts(raw: Raw) -> dict[str, list]:
    """Cursor columns of the accounts named in ingest_accounts, by account id order."""
    rows = raw.run(
        "SELECT a.id, a.cycle_day, a.timezone, a.grace_seconds, a.cycle_start, a.cycle_end, "
        "a.until, a.segment_start, a.last_key, a.pool_plan_id, a.version "
        "FROM ingest_accounts t CROSS JOIN accounts a WHERE a.id = t.id ORDER BY a.id")
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(11)]
    return {
        "id": list(cols[0]), "calendar": [CycleCalendar(d, tz) for d, tz in
                                          zip(cols[1], cols[2], strict=True)],
        "grace_us": [g * 1_000_000 for g in cols[3]],
        "cycle_start": us_column(cols[4]), "cycle_end": us_column(cols[5]),
        "until": us_column(cols[6]), "segment_start": us_column(cols[7]),
        "last_key": [None if v is None else (json.loads(v) if isinstance(v, str) else v)
                     for v in cols[8]],
        "pool": [p is not None for p in cols[9]],
        "version": list(cols[10]),
    }


def load_lines(raw: Raw) -> list[tuple]:
    """(id, account_id, plan_id, pending_plan, member) of every line of the named accounts."""
    return raw.run("SELECT l.id, l.account_id, l.plan_id, l.pending_plan, l.member "
                   "FROM ingest_accounts t CROSS JOIN lines l WHERE l.account_id = t.id "
                   "ORDER BY l.account_id, l.id")


def load_buckets(raw: Raw, line_index: dict[str, int]) -> Buckets:
    """Live buckets of the named accounts as columns (pool buckets are not loaded)."""
    rows = raw.run(
        "SELECT b.owner, b.unit, b.kind, b.granted, b.remaining, b.valid_from, b.valid_until, "
        "b.priority, b.rollable, b.id, b.origin FROM ingest_accounts t CROSS JOIN buckets b "
        "WHERE b.account_id = t.id AND b.closed = ? ORDER BY b.id",
        (False,))
    rows = [r for r in rows if r[0] in line_index]
    if not rows:
        return Buckets.empty()
    from carryover.domain.columnar.state import KINDS, UNITS
    from carryover.domain.plans import BucketKind
    from carryover.domain.units import Unit
    cols = list(zip(*rows, strict=True))
    n = len(rows)
    unlimited = np.array([g is None for g in cols[3]], dtype=bool)
    big = np.int64(UNLIMITED)
    return Buckets(
        line=np.array([line_index[o] for o in cols[0]], dtype=I64),
        unit=np.array([UNITS.index(Unit(u)) for u in cols[1]], dtype=I64),
        kind=np.array([KINDS.index(BucketKind(k)) for k in cols[2]], dtype=I64),
        granted=np.array([big if g is None else g for g in cols[3]], dtype=I64),
        remaining=np.array([big if r is None else r for r in cols[4]], dtype=I64),
        unlimited=unlimited,
        valid_from=np.array(us_column(cols[5]), dtype=I64),
        valid_until=np.where(np.array([v is None for v in cols[6]]), NEVER,
                             np.array(us_column(cols[6]), dtype=I64)),
        priority=np.array(cols[7], dtype=I64),
        rollable=np.array([bool(v) for v in cols[8]], dtype=bool),
        closed=np.zeros(n, dtype=bool),
        ids=np.array(cols[9], dtype=object),
        origin=np.array(cols[10], dtype=object),
        new=np.zeros(n, dtype=bool),
    )
