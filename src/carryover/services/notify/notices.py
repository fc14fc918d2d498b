"""Notifications derived from stored state, written to the transactional outbox.

`emit_notifications(uow, account_ids)` runs inside the transaction of a
change (one event, a batch, an ingest chunk, a read that materialized a cycle)
after the change is written. Each account's conditions are decided at its own
instant, the latest its book has reached (`accounts.until`, `AccountBook.until`):
never at an instant of another account (a batch's latest event), and never
before where the account stands (an out-of-order event), where the current
cycle's buckets are not yet valid and everything would look used up. A caller
may name one instant for all (`at`, for tests that look at a state at chosen
instants). It reads the stored state of every line of the touched accounts
through the unit of work's outbox repository (store.outbox: a few set-based
queries for the lines, the current cycle's counters, bucket aggregates per
owner), decides which conditions hold now, and offers one outbox row per
condition; the outbox keeps the first of each (line, cycle_start, kind). So each
kind fires once per line per cycle, however often and by whichever path the same
state is evaluated, and it commits or rolls back with the change that caused it.
The work is per line, never per event.

Kinds (data only):
- usage_50, usage_80, usage_100: the line's `used` counter of the current cycle
  against the data allowance granted to it in that cycle (its allowance buckets;
  a plan-less family member: the pool's). Unlimited allowances have no thresholds.
  A line whose subscriber picked its alert thresholds (`lines.alert_thresholds`)
  has usage_<pct> at each of those percentages instead.
- throttled, blocked: the line used data this cycle and has nothing usable left
  (own buckets, and the pool's for a member within its limit), and the governing
  plan's overage action is throttle or block.
- rollover_credited: a rollover bucket of the line (or of its pool) starts in the
  current cycle.
- rollover_expiring: an open rollover bucket with something left ends within 7
  days after `at`.
- member_limit_reached: the member's `pool` counter reached its data limit.
- esim_installed: written by the eSIM notification service
  (services.esim.download_progress) when a profile reaches `installed`.

The decision itself is pure (carryover.domain.notices). The single-event path
(services.ledger.operations) already holds the account's book in memory, so
`emit_from_book` decides from the book instead of re-reading the state: it only
asks the store for the closed buckets the book does not hold and, when a notice
concerns another line, the lines' MSISDNs. Both ways offer the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL, Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.notices import (
    DEFAULT_THRESHOLDS,
    EXPIRING_WITHIN,
    THRESHOLDS,
    line_conditions,
    notices,
    plan_in_force,
)
from carryover.services.notify.ports import BookUnit, NoticeUnit

KINDS = ("usage_50", "usage_80", "usage_100", "throttled", "blocked", "rollover_credited",
         "rollover_expiring", "member_limit_reached", "esim_installed")
__all__ = ["EXPIRING_WITHIN", "KINDS", "THRESHOLDS", "emit_from_book", "emit_notifications",
           "notification_rows"]


def emit_notifications(uow: NoticeUnit, account_ids: Iterable[int],
                       at: datetime | None = None) -> int:
    """Offer the notifications that hold for the lines of `account_ids`, each account at
    its own instant (or all at `at`).

    Returns how many candidate rows were offered (the outbox keeps only new ones)."""
    rows = notification_rows(uow, account_ids, at)
    uow.outbox.offer(rows)
    return len(rows)


def notification_rows(uow: NoticeUnit, account_ids: Iterable[int],
                      at: datetime | None = None) -> list[dict]:
    """The outbox rows `emit_notifications` offers, read from the stored state."""
    ids = sorted({int(a) for a in account_ids})
    if not ids:
        return []
    store = uow.outbox
    acct = store.notice_accounts(ids)
    if not acct:
        return []
    cycle = {a: r.cycle_start.isoformat() for a, r in acct.items()}
    when = {a: at or r.until or r.cycle_start for a, r in acct.items()}
    used = store.cycle_counters(cycle)
    facts: dict[tuple, dict] = {}
    for instant in sorted(set(when.values())):  # accounts at the same instant: one query
        facts.update(store.bucket_facts([a for a, t in when.items() if t == instant], instant,
                                        EXPIRING_WITHIN))
    plans = uow.plans.all()
    rows: list[dict] = []
    for line in store.notice_lines(list(acct)):
        account = acct[line.account_id]
        instant = when[line.account_id]
        own = facts.get((line.account_id, line.id), {})
        pool = facts.get((line.account_id, POOL), {}) if line.member else {}
        base = {"line": line.id, "msisdn": line.msisdn, "account": account.name,
                "cycle_start": cycle[line.account_id], "at": instant.isoformat()}
        for kind, numbers in _conditions(line, account, own, pool, used, plans, cycle,
                                         instant):
            rows.append({"account_id": line.account_id, "line": line.id,
                         "cycle_start": cycle[line.account_id], "kind": kind, "at": instant,
                         "payload": {"kind": kind, **base, **numbers}})
    return rows


def emit_from_book(uow: BookUnit, account: Any, book: AccountBook, at: datetime,
                   known: Any = None, thresholds: dict | None = None) -> int:
    """Offer the notifications that hold at `at` for the lines of `book`, just saved.

    `account` is the account's row (id, name); `known` a line row (id, msisdn) the
    caller already read, which spares the MSISDN query when only it has notices;
    `thresholds` the lines' picked alert thresholds (the book's snapshot has them).
    Offers the same rows as `emit_notifications` on the stored state."""
    rows = book_rows(uow, account, book, at, known, thresholds)
    uow.outbox.offer(rows)
    return len(rows)


def book_rows(uow: BookUnit, account: Any, book: AccountBook, at: datetime,
              known: Any = None, thresholds: dict | None = None) -> list[dict]:
    """The outbox rows of `emit_from_book`, without writing them."""
    if book.cycle_start is None or book.cycle_end is None:
        return []
    store = uow.outbox
    closed = store.closed_buckets([account.id], book.cycle_start).get(account.id, [])
    msisdn = _Lazy(lambda: store.msisdns(account.id),
                   {known.id: known.msisdn} if known is not None else {})
    return book_rows_with(account, book, at, closed, msisdn, thresholds)


class _Lazy(dict):
    """MSISDNs read only when a notice names a line the caller did not know."""

    def __init__(self, read, known: dict) -> None:
        super().__init__(known)
        self._read = read

    def __missing__(self, line: str) -> str:
        self.update(self._read())
        if line not in self:
            raise KeyError(line)
        return dict.__getitem__(self, line)


def book_rows_with(account: Any, book: AccountBook, at: datetime, closed: Iterable[Bucket],
                   msisdn: dict[str, str], thresholds: dict | None = None) -> list[dict]:
    """The outbox rows for the conditions that hold in `book` at `at`, given the closed
    data buckets the store holds for the account (`OutboxRepository.closed_buckets`; any
    superset of those counting for the cycle gives the same rows) and the lines' MSISDNs.
    Callers pass `domain.notices.decided_at(book, t)` for a change at t (the module
    docstring). `thresholds`: line -> its picked alert thresholds (the snapshot's
    `alert_thresholds`)."""
    if book.cycle_start is None or book.cycle_end is None:
        return []
    found = notices(book, at, closed, thresholds)
    if not found:
        return []
    start = book.cycle_start.astimezone(UTC).isoformat()
    rows = []
    for line, kind, numbers in found:
        base = {"line": line, "msisdn": msisdn[line], "account": account.name,
                "cycle_start": start, "at": at.isoformat()}
        rows.append({"account_id": account.id, "line": line, "cycle_start": start,
                     "kind": kind, "at": at, "payload": {"kind": kind, **base, **numbers}})
    return rows


def _conditions(line: Any, account: Any, own: dict, pool: dict, used: dict, plans: dict,
                cycle: dict, at: datetime) -> Iterable[tuple[str, dict]]:
    """(kind, numbers) for one stored line: the row-shaped front of `line_conditions`.

    `used` maps (account, line, counter) to the cycle's data counters; `own` and
    `pool` are `OutboxRepository.bucket_facts` entries (instants may be naive UTC from
    SQLite);
    `account` has `cycle_day` and `timezone`: a plan's version is the one in force
    at `at` on the account's calendar."""
    key = (line.account_id, line.id)
    return line_conditions(
        member=bool(line.member), plan_id=line.plan_id, pool_plan_id=account.pool_plan_id,
        data_limit=(line.limits or {}).get("data"),
        spent=used.get((*key, "used"), 0), from_pool=used.get((*key, "pool"), 0),
        own=own, pool=pool, plan=_in_force(plans, at, account),
        thresholds=line.alert_thresholds or DEFAULT_THRESHOLDS)


def _in_force(plans: dict, at: datetime, account: Any):
    # The calendar is built only when a line asks for its plan (a throttled/blocked
    # candidate), not for each of a bulk chunk's lines.
    def plan(plan_id: str):
        calendar = CycleCalendar(account.cycle_day, account.timezone)
        return plan_in_force(plans, at, calendar)(plan_id)
    return plan

