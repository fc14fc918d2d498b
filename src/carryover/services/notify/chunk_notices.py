"""Notifications for an ingest chunk: the same outbox rows as `emit_notifications`, cheaper.

`emit_notifications` (services.notify.notices) reads the state of the touched
accounts through the outbox repository's SQLAlchemy Core reads, one result row
object per line and per bucket group. An ingest chunk touches tens of thousands
of accounts, and turning those rows into objects cost more than rating the
chunk. `ChunkNotifier.emit` runs the same three set-based reads (accounts, the
current cycle's counters, bucket aggregates per owner) on the raw DBAPI cursor
(store.notice_reads), joined to the temporary table of the chunk's accounts
instead of long IN lists, and hands each line to the same `_conditions`. So the
conditions and payloads are those of `emit_notifications` by construction
(`tests/integration/test_chunk_notices.py` compares the rows offered, and
the rows stored).

The rows go to the outbox through `offer` too, so they are stored as the
single-event path stores them.

Each account's notices are decided at its own instant: the latest its book has
reached (`accounts.until`, what the chunk just wrote), never the latest of the
chunk, which belongs to some other account; a test may ask for one instant for
all. The per-account instants go into the temporary table `notice_instants`
beside `ingest_accounts`.

One thing it adds: a candidate already offered by an earlier chunk of the same
run is not offered again. That chunk committed before this one began, so the
outbox holds the (line, cycle, kind) key and ON CONFLICT DO NOTHING would drop
the row anyway.
"""

from __future__ import annotations

import sys
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from carryover.domain.buckets import POOL
from carryover.services.notify.notices import EXPIRING_WITHIN, _conditions

if TYPE_CHECKING:
    from carryover.services.notify.ports import ChunkNoticeReads, Outbox


@dataclass(frozen=True, slots=True)
class _Line:
    id: str
    account_id: int
    msisdn: str | None
    plan_id: str | None
    member: bool
    limits: dict
    alert_thresholds: list | None


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    pool_plan_id: str | None
    cycle_day: int
    timezone: str


INSERT_SLICE = 10_000
ACCOUNT_BATCH = 20_000


class ChunkNotifier:
    """Offers each chunk's notifications; remembers what this run offered already."""

    def __init__(self) -> None:
        self.offered: set[tuple[str, str, str]] = set()

    def emit(self, outbox: Outbox, reads: ChunkNoticeReads, account_ids: Iterable[int],
             at: datetime | None, plans: dict) -> int:
        """Offer to `outbox` the notifications that hold for the lines of `account_ids`,
        each account at its own instant (`at` None) or all at `at`, read through `reads`
        (store.notice_reads). Returns the rows offered."""
        offered = 0
        rows: list[dict] = []
        ids = sorted({int(a) for a in account_ids})
        # In batches of accounts: what the reads bring back per account (its lines, facts
        # and counters as Python objects) is held for one batch, not for a transaction's
        # hundred thousand accounts at once.
        batches = (ids[lo:lo + ACCOUNT_BATCH] for lo in range(0, len(ids), ACCOUNT_BATCH))
        for row in (r for batch in batches
                    for r in _candidates(reads, batch, at, plans, self.offered)):
            # Interned: a run remembers a key per notification (200,000 for a
            # 10,000,000-event file), and each row brings its own copies of the same
            # few strings; shared, a key costs about a third.
            self.offered.add((sys.intern(row["line"]), sys.intern(row["cycle_start"]),
                              sys.intern(row["kind"])))
            rows.append(row)
            if len(rows) == INSERT_SLICE:  # bounded memory: a payload dict is ~1 KB
                outbox.offer(rows)
                offered, rows = offered + len(rows), []
        outbox.offer(rows)
        return offered + len(rows)


def candidates(reads: ChunkNoticeReads, account_ids: Iterable[int], at: datetime | None,
               plans: dict) -> list[dict]:
    """The rows `emit_notifications(uow, account_ids, at)` would offer, in its order."""
    return list(_candidates(reads, account_ids, at, plans))


def _candidates(reads: ChunkNoticeReads, account_ids: Iterable[int], at: datetime | None,
                plans: dict, offered: Container[tuple[str, str, str]] = frozenset(),
                ) -> Iterator[dict]:
    """The candidate rows, but none whose (line, cycle_start, kind) is in `offered`."""
    ids = sorted({int(a) for a in account_ids})
    if not ids:
        return
    acct: dict[int, _Account] = {}
    cycle: dict[int, str] = {}
    when: dict[int, datetime] = {}
    text: dict[datetime, str] = {}  # ISO text of an instant, made once (accounts share them)
    for a, name, start, until, pool_plan, cycle_day, zone in reads.accounts(ids):
        acct[a] = _Account(name, pool_plan, cycle_day, zone)
        cycle[a] = text.get(start) or text.setdefault(start, start.isoformat())
        when[a] = at or until or start
    if not acct:
        return
    used = reads.cycle_counters(cycle)
    reads.name_instants(when, EXPIRING_WITHIN)
    facts = reads.bucket_facts()
    for line_id, account_id, msisdn, plan_id, member, limits, picked in reads.lines():
        if account_id not in acct:
            continue
        line = _Line(line_id, account_id, msisdn, plan_id, bool(member), limits or {}, picked)
        account = acct[account_id]
        own = facts.get((account_id, line_id), {})
        pool = facts.get((account_id, POOL), {}) if line.member else {}
        instant = when[account_id]
        for kind, numbers in _conditions(line, account, own, pool, used, plans, cycle,
                                         instant):
            if (line_id, cycle[account_id], kind) in offered:
                continue  # before its row is built: most of a chunk's were offered before
            stamp = text.get(instant) or text.setdefault(instant, instant.isoformat())
            base = {"line": line_id, "msisdn": msisdn, "account": account.name,
                    "cycle_start": cycle[account_id], "at": stamp}
            yield {"account_id": account_id, "line": line_id, "cycle_start": cycle[account_id],
                   "kind": kind, "at": instant, "payload": {"kind": kind, **base, **numbers}}
