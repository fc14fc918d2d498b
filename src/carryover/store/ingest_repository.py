"""The reads and writes of `carryover ingest` (services.ingest.chunks), set-based.

An ingest chunk touches tens of thousands of accounts and writes up to millions
of rows; one SQLAlchemy statement per row would cost more than rating them. So
this repository works on columns: it reads every line once per run
(`line_directory`), the state of the chunk's accounts through the temporary
table that names them (`name_accounts`, store.raw_cursor), and writes events,
buckets, ledger entries, counters and cursors a slice at a time through
store.raw_cursor.Raw (executemany on SQLite; COPY and set-based statements on
PostgreSQL), instants formatted once per column. Every statement runs in the
unit of work's transaction, on its connection.

What it writes is what the columnar fold (domain.columnar) changed: `save_fold`
diffs the fold's bucket table against the state it started from, as
`AccountRepository.save_books` does for an object book.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
from sqlalchemy import Connection

from carryover.domain.columnar.fold import COUNTERS, ColumnarBook
from carryover.domain.columnar.state import (
    ENTRY_KINDS,
    I64,
    KINDS,
    UNIT_NAMES,
    Buckets,
    from_us,
)
from carryover.store import raw_cursor
from carryover.store.instants import booking_clock
from carryover.store.notice_reads import NoticeReads
from carryover.store.totals import UsageTotals

WRITE_SLICE = 50_000  # rows per executemany / COPY of the big tables
LOOKUP_SLICE = 5_000  # ids per IN list of an exact lookup (SQLite)
PG_LOOKUP_SLICE = 50_000  # ids per array of an exact lookup (PostgreSQL)
JOINED_TABLES = ("accounts", "buckets", "counters", "lines")
KIND_NAMES = np.array([str(k) for k in KINDS], dtype=object)
ENTRY_NAMES = np.array([str(k) for k in ENTRY_KINDS], dtype=object)
EVENT_COLUMNS = ("event_id", "account_id", "line", "at", "received_at", "effective_at",
                 "amount", "unit", "rating_group", "late")


@dataclass
class LineDirectory:
    """Every line by id, MSISDN and IMSI, read once per ingest."""

    index: dict[str, int]
    ids: np.ndarray
    account: np.ndarray
    opened: np.ndarray

    @classmethod
    def load(cls, raw: raw_cursor.Raw) -> LineDirectory:
        rows = raw.run("SELECT id, msisdn, imsi, account_id, opened_at FROM lines ORDER BY id")
        index: dict[str, int] = {}
        for i, (line_id, msisdn, imsi, _, _) in enumerate(rows):
            index[line_id] = i
            if msisdn:
                index[msisdn] = i
                index[msisdn.lstrip("+")] = i
            if imsi:
                index[imsi] = i
        return cls(index, np.array([r[0] for r in rows], dtype=object),
                   np.array([r[3] for r in rows], dtype=I64),
                   np.array(raw_cursor.us_column([r[4] for r in rows]), dtype=I64))


class IngestRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._raw: raw_cursor.Raw | None = None

    @property
    def raw(self) -> raw_cursor.Raw:
        """The connection's DBAPI cursor (opened on first use: most units of work never
        ingest)."""
        if self._raw is None:
            self._raw = raw_cursor.Raw(self.conn)
        return self._raw

    # ---- reading -------------------------------------------------------------------
    def notice_reads(self) -> NoticeReads:
        """What the chunk's notifier reads the stored state with (store.notice_reads)."""
        return NoticeReads(self.raw)

    def line_directory(self) -> LineDirectory:
        """Every line (read once per run). On PostgreSQL the tables an ingest joins are
        first analyzed if they never were (a database just provisioned, before autovacuum
        came by): without statistics the planner takes them for a few rows, and the
        chunk's notice reads join them by nested loops."""
        if self.raw.dialect == "postgresql":
            for (table,) in self.raw.run(
                    "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(?::text[]) "
                    "AND last_analyze IS NULL AND last_autoanalyze IS NULL ORDER BY relname",
                    (list(JOINED_TABLES),)):
                self.raw.run(f"ANALYZE {table}")
        return LineDirectory.load(self.raw)

    def totals(self) -> UsageTotals:
        """The stored usage totals a chunk is checked against (store.totals)."""
        return UsageTotals(self.raw)

    def name_accounts(self, ids: Sequence[int]) -> None:
        """Name these accounts for the reads below (raw_cursor.Raw.name_accounts)."""
        self.raw.name_accounts(ids)

    def lock_versions(self) -> dict[int, int]:
        """The named accounts' versions, their rows locked first on PostgreSQL: in id
        order, so writers wait for each other instead of deadlocking, and not the key
        (FOR NO KEY UPDATE), so inserts that merely reference an account do not wait.
        (SQLite: the write transaction already excludes every other writer.)"""
        raw = self.raw
        lock = " ORDER BY a.id FOR NO KEY UPDATE OF a" if raw.dialect == "postgresql" else ""
        return dict(raw.run("SELECT a.id, a.version FROM ingest_accounts t "
                            "CROSS JOIN accounts a WHERE a.id = t.id" + lock))

    def load_accounts(self) -> dict[str, list]:
        """The named accounts' cursor columns (raw_cursor.load_accounts)."""
        return raw_cursor.load_accounts(self.raw)

    def load_lines(self) -> list[tuple]:
        """The named accounts' lines (raw_cursor.load_lines)."""
        return raw_cursor.load_lines(self.raw)

    def load_buckets(self, line_index: dict[str, int]) -> Buckets:
        """The named accounts' live buckets as columns (raw_cursor.load_buckets)."""
        return raw_cursor.load_buckets(self.raw, line_index)

    def stored_events(self, event_ids: np.ndarray) -> np.ndarray:
        """True where an event id is stored already, looked up exactly (a few thousand
        ids per statement)."""
        stored: set[str] = set()
        ids = event_ids.tolist()
        postgresql = self.raw.dialect == "postgresql"
        step = PG_LOOKUP_SLICE if postgresql else LOOKUP_SLICE
        for start in range(0, len(ids), step):
            part = ids[start:start + step]
            if postgresql:  # one array parameter: no statement of 5,000 placeholders to parse
                rows = self.raw.run("SELECT event_id FROM usage_events "
                                    "WHERE event_id = ANY(?::text[])", (part,))
            else:
                marks = ", ".join("?" * len(part))
                rows = self.raw.run(
                    f"SELECT event_id FROM usage_events WHERE event_id IN ({marks})", part)
            stored.update(r[0] for r in rows)
        return np.array([i in stored for i in ids], dtype=bool)

    # ---- writing -------------------------------------------------------------------
    def insert_events(self, event_ids: np.ndarray, account: np.ndarray, line_ids: np.ndarray,
                      at: np.ndarray, received: np.ndarray, eff: np.ndarray,
                      amount: np.ndarray, unit: np.ndarray, rating_group: np.ndarray,
                      late: np.ndarray) -> np.ndarray:
        """Insert the events (instants in µs, `unit` as indexes of UNITS); True where a
        row went in, False for an id that was already stored.

        The unique event id is the duplicate check: usually every row goes in at once;
        when the count comes up short, the insert is undone, the stored ids are looked
        up exactly and the rest inserted."""
        raw = self.raw

        def insert(sel: np.ndarray) -> int:
            # Row tuples are built and sent a slice at a time: the whole chunk as tuples
            # would hold about 500 bytes per event at once.
            count = 0
            for lo in range(0, len(sel), WRITE_SLICE):
                part = sel[lo:lo + WRITE_SLICE]
                # The effective instant is `at` except for late events: format only those.
                at_text = raw.instants(at[part])
                eff_text = list(at_text)
                moved = np.flatnonzero(eff[part] != at[part])
                for i, text in zip(moved.tolist(), raw.instants(eff[part][moved]), strict=True):
                    eff_text[i] = text
                rows = list(zip(event_ids[part].tolist(), account[part].tolist(),
                                line_ids[part].tolist(), at_text, raw.instants(received[part]),
                                eff_text, amount[part].tolist(), UNIT_NAMES[unit[part]].tolist(),
                                rating_group[part].tolist(), late[part].tolist(), strict=True))
                count += raw.append_new("usage_events", EVENT_COLUMNS, rows, "event_id")
            return count

        everything = np.arange(len(event_ids))
        raw.run("SAVEPOINT ingest_events")
        if insert(everything) == len(everything):
            raw.run("RELEASE SAVEPOINT ingest_events")
            return np.ones(len(everything), dtype=bool)
        # Some ids were stored before: undo, find them exactly, insert the rest.
        raw.run("ROLLBACK TO SAVEPOINT ingest_events")
        fresh = ~self.stored_events(event_ids)
        insert(np.flatnonzero(fresh))
        raw.run("RELEASE SAVEPOINT ingest_events")
        return fresh

    def save_fold(self, columnar: ColumnarBook, n_known: int, before: tuple[np.ndarray, np.ndarray],
                  line_account: np.ndarray, line_name: np.ndarray,
                  cursors: Sequence[tuple[int, int, list | None]]) -> None:
        """Write what the fold `columnar` changed: the first `n_known` of its buckets whose
        (remaining, closed) moved from `before`, the buckets it added, its entries (booked
        now, `booking_clock`), its counters (added to the stored ones), and the cursor of
        each account in `cursors`, (its index in `columnar`, account id, stored last key),
        which also bumps the account's version. `line_account` and `line_name`: each of
        the fold's lines' account id and line id."""
        # Rows are built column by column (numpy indexing once per column, then zip), not
        # by indexing arrays once per row: at a million rows that is most of the cost.
        raw = self.raw
        b = columnar.b
        recorded = raw.instant(booking_clock())  # every entry of this write is booked now

        def amounts(values: np.ndarray, unlimited: np.ndarray) -> list:
            out = values.tolist()
            for i in np.flatnonzero(unlimited).tolist():
                out[i] = None
            return out

        changed = np.flatnonzero((b.remaining[:n_known] != before[0])
                                 | (b.closed[:n_known] != before[1]))
        raw.update("buckets", ("account_id", "id"), ("remaining", "closed"),
                   list(zip(amounts(b.remaining[changed], b.unlimited[changed]),
                            b.closed[changed].tolist(), line_account[b.line[changed]].tolist(),
                            b.ids[changed].tolist(), strict=True)))
        new = np.arange(n_known, len(b))
        if len(new):
            raw.append(
                "buckets", ("account_id", "id", "owner", "unit", "kind", "granted", "remaining",
                            "valid_from", "valid_until", "priority", "rollable", "origin",
                            "closed"),
                list(zip(line_account[b.line[new]].tolist(), b.ids[new].tolist(),
                         line_name[b.line[new]].tolist(), UNIT_NAMES[b.unit[new]].tolist(),
                         KIND_NAMES[b.kind[new]].tolist(),
                         amounts(b.granted[new], b.unlimited[new]),
                         amounts(b.remaining[new], b.unlimited[new]),
                         raw.instants(b.valid_from[new]), raw.instants(b.valid_until[new]),
                         b.priority[new].tolist(), b.rollable[new].tolist(),
                         b.origin[new].tolist(), b.closed[new].tolist(), strict=True)))
        cols = columnar.entries.columns()
        if len(cols["amount"]):
            bucket = cols["bucket"]
            bucket_ids = b.ids[np.where(bucket < 0, 0, bucket)] if len(b) else np.full(
                len(bucket), None, dtype=object)
            bucket_ids = np.where(bucket < 0, None, bucket_ids)
            line = cols["line"]
            line_names = np.where(line < 0, None, line_name[np.where(line < 0, 0, line)])
            owner = cols["owner_line"]
            for lo in range(0, len(owner), WRITE_SLICE):
                s = slice(lo, lo + WRITE_SLICE)
                raw.append(
                    "ledger_entries", ("account_id", "effective_at", "recorded_at", "kind",
                                       "unit", "amount", "bucket_id", "owner", "line", "ref",
                                       "note"),
                    list(zip(line_account[owner[s]].tolist(), raw.instants(cols["at"][s]),
                             repeat(recorded, len(owner[s])),
                             ENTRY_NAMES[cols["kind"][s]].tolist(),
                             UNIT_NAMES[cols["unit"][s]].tolist(), cols["amount"][s].tolist(),
                             bucket_ids[s].tolist(), line_name[owner[s]].tolist(),
                             line_names[s].tolist(), cols["ref"][s].tolist(),
                             cols["note"][s].tolist(), strict=True)))
        counters = sorted(columnar.counters().items())
        cycles = {c: from_us(c).isoformat() for c in {key[0] for key, _ in counters}}
        raw.add_to(
            "counters", ("account_id", "cycle_start", "line", "unit", "name"), "value",
            [(int(line_account[line]), cycles[cycle], line_name[line], UNIT_NAMES[unit],
              COUNTERS[code], value)
             for (cycle, line, unit, code), value in counters])
        cursor = [raw.instants(np.asarray(getattr(columnar, name), dtype=I64))
                  for name in ("cycle_start", "cycle_end", "until", "segment_start")]
        raw.update("accounts", ("id",), ("cycle_start", "cycle_end", "until", "segment_start",
                                         "last_key"),
                   [(cursor[0][k], cursor[1][k], cursor[2][k], cursor[3][k], json.dumps(key),
                     account_id) for k, account_id, key in cursors],
                   also="version = version + 1")
