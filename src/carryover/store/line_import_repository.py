"""The writes of `carryover line import` (services.ledger.line_import), in bulk.

A line file creates accounts by the thousand, each with a book folded in memory
from its OpenLine inputs. Written row by row through the object repository,
that is a statement per row per table; here each table gets one executemany
per chunk of the file (store.raw_cursor.Raw: the driver's cursor, '?' on both
backends), instants in the text each backend stores, and JSON columns cast on
PostgreSQL. The reads are the ones a chunk's checks need whole: every account
by name, and every identifier a line already has (line ids, MSISDNs with and
without "+", IMSIs are one namespace).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from carryover.domain.book import AccountBook
from carryover.store import codec
from carryover.store.instants import booking_clock
from carryover.store.raw_cursor import Raw


class LineImportRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._raw: Raw | None = None

    @property
    def raw(self) -> Raw:
        # Opened on first use: most units of work never import lines.
        if self._raw is None:
            self._raw = Raw(self.conn)
        return self._raw

    def _json(self) -> str:
        return "?" if self.raw.dialect == "sqlite" else "CAST(? AS JSON)"

    def accounts(self) -> dict[str, tuple]:
        """Every account by name: (id, cycle_day, timezone, pool_plan_id)."""
        return {name: (i, d, tz, pool) for i, name, d, tz, pool in self.raw.run(
            "SELECT id, name, cycle_day, timezone, pool_plan_id FROM accounts")}

    def taken_identifiers(self) -> set[str]:
        """Every line id, MSISDN (with and without "+") and IMSI a stored line has."""
        raw = self.raw
        taken = {r[0] for r in raw.run("SELECT msisdn FROM lines WHERE msisdn IS NOT NULL")}
        taken |= {m.lstrip("+") for m in taken}
        taken |= {r[0] for r in raw.run("SELECT imsi FROM lines WHERE imsi IS NOT NULL")}
        taken |= {r[0] for r in raw.run("SELECT id FROM lines")}
        return taken

    def create_accounts(self, names: Sequence[str], cycle_day: int, timezone: str,
                        grace: timedelta, created_at: datetime) -> dict[str, int]:
        """Insert accounts with these names (version 0, no cursor yet): name -> id."""
        if not names:
            return {}
        raw = self.raw
        raw.many("INSERT INTO accounts (name, cycle_day, timezone, grace_seconds, created_at, "
                 "version) VALUES (?, ?, ?, ?, ?, ?)",
                 [(n, cycle_day, timezone, int(grace / timedelta(seconds=1)),
                   raw.instant(created_at), 0) for n in names])
        ids: dict[str, int] = {}
        for start in range(0, len(names), 5000):
            part = list(names[start:start + 5000])
            marks = ", ".join("?" * len(part))
            ids.update({n: i for i, n in raw.run(
                f"SELECT id, name FROM accounts WHERE name IN ({marks})", part)})
        return ids

    def add_lines(self, rows: Sequence[tuple]) -> None:
        """Insert lines, each (id, account_id, msisdn, imsi, opened_at, plan_id, member),
        with no limits."""
        raw = self.raw
        raw.many("INSERT INTO lines (id, account_id, msisdn, imsi, opened_at, plan_id, member, "
                 f"limits) VALUES (?, ?, ?, ?, ?, ?, ?, {self._json()})",
                 [(lid, acct, ms, im, raw.instant(st), pl, mem, "{}")
                  for lid, acct, ms, im, st, pl, mem in rows])

    def save_new_books(self, ids: dict[str, int], books: dict[str, AccountBook],
                       recorded: datetime) -> None:
        """Write freshly folded books of brand-new accounts: inputs (recorded at
        `recorded`, given by the CLI), buckets, entries (booked now) and cursor."""
        raw = self.raw
        text = raw.instant
        stamp = text(recorded)
        inputs, buckets, entries, cursors = [], [], [], []
        booked = text(booking_clock())  # when these entries are booked
        cast = self._json()
        for name, book in books.items():
            acct = ids[name]
            for item in book.applied:
                kind, body = codec.encode(item)
                inputs.append((acct, item.id, kind, item.line, text(item.at), json.dumps(body),
                               "cli", stamp))
            for b in book.buckets.values():
                buckets.append((acct, b.id, b.owner, str(b.unit), str(b.kind), b.granted,
                                b.remaining, text(b.valid_from),
                                None if b.valid_until is None else text(b.valid_until),
                                b.priority, b.rollable, b.origin, b.closed))
            for e in book.entries:
                entries.append((acct, text(e.effective_at), booked, str(e.kind),
                                str(e.unit), e.amount,
                                e.bucket_id, e.owner, e.line, e.ref, e.note))
            key = book.last_key
            cursors.append((text(book.cycle_start), text(book.cycle_end),
                            text(book.until), text(book.segment_start),
                            json.dumps([key[0].isoformat(), key[1], key[2]]), acct))
        raw.many(f"INSERT INTO inputs (account_id, input_id, kind, line, at, body, actor, "
                 f"recorded_at) VALUES (?, ?, ?, ?, ?, {cast}, ?, ?)", inputs)
        raw.many("INSERT INTO buckets (account_id, id, owner, unit, kind, granted, remaining, "
                 "valid_from, valid_until, priority, rollable, origin, closed) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", buckets)
        raw.many("INSERT INTO ledger_entries (account_id, effective_at, recorded_at, kind, unit, "
                 "amount, bucket_id, owner, line, ref, note) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", entries)
        raw.many(f"UPDATE accounts SET cycle_start = ?, cycle_end = ?, until = ?, "
                 f"segment_start = ?, last_key = {cast} WHERE id = ?", cursors)
