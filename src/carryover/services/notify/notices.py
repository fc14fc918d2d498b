"""Notifications derived from stored state, written to the transactional outbox.

`emit_notifications(conn, account_ids)` runs inside the transaction of a
change (one event, a batch, an ingest chunk, a read that materialized a cycle)
after the change is written. Each account's conditions are decided at its own
instant, the latest its book has reached (`accounts.until`, `AccountBook.until`):
never at an instant of another account (a batch's latest event), and never
before where the account stands (an out-of-order event), where the current
cycle's buckets are not yet valid and everything would look used up. A caller
may name one instant for all (`at`, for tests that look at a state at chosen
instants). It reads the stored state of every line of the
touched accounts with a few set-based queries (lines, the current cycle's
counters, bucket aggregates per owner), decides which conditions hold now, and
inserts one outbox row per condition with INSERT ... ON CONFLICT DO NOTHING on
(line, cycle_start, kind). So each kind fires once per line per cycle, however
often and by whichever path the same state is evaluated, and it commits or rolls
back with the change that caused it. The work is per line, never per event.

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

from sqlalchemy import Connection, and_, bindparam, case, func, select

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
from carryover.store.closed_buckets import closed_from_rows, closed_query
from carryover.store.outbox import offer
from carryover.store.repository import PlanRepository, utc
from carryover.store.tables import accounts, buckets, counters, lines

KINDS = ("usage_50", "usage_80", "usage_100", "throttled", "blocked", "rollover_credited",
         "rollover_expiring", "member_limit_reached", "esim_installed")
__all__ = ["EXPIRING_WITHIN", "KINDS", "THRESHOLDS", "emit_from_book", "emit_notifications",
           "notification_rows"]


def emit_notifications(conn: Connection, account_ids: Iterable[int],
                       at: datetime | None = None) -> int:
    """Insert the notifications that hold for the lines of `account_ids`, each account at
    its own instant (or all at `at`).

    Returns how many candidate rows were offered (the outbox keeps only new ones)."""
    rows = notification_rows(conn, account_ids, at)
    _insert(conn, rows)
    return len(rows)


def notification_rows(conn: Connection, account_ids: Iterable[int],
                      at: datetime | None = None) -> list[dict]:
    """The outbox rows `emit_notifications` offers, read from the stored state."""
    ids = sorted({int(a) for a in account_ids})
    if not ids:
        return []
    acct = {r.id: r for r in conn.execute(select(
        accounts.c.id, accounts.c.name, accounts.c.cycle_start, accounts.c.cycle_end,
        accounts.c.until, accounts.c.pool_plan_id, accounts.c.cycle_day,
        accounts.c.timezone).where(accounts.c.id.in_(ids), accounts.c.cycle_start.isnot(None)))}
    if not acct:
        return []
    cycle = {a: utc(r.cycle_start).isoformat() for a, r in acct.items()}
    when = {a: at or utc(r.until) or utc(r.cycle_start) for a, r in acct.items()}
    used = _counters(conn, list(acct), sorted(set(cycle.values())), cycle)
    facts: dict[tuple, dict] = {}
    for instant in sorted(set(when.values())):  # accounts at the same instant: one query
        facts.update(_bucket_facts(conn, [a for a, t in when.items() if t == instant], instant))
    plans = PlanRepository(conn).all()
    rows: list[dict] = []
    for line in conn.execute(select(lines).where(lines.c.account_id.in_(list(acct)))
                             .order_by(lines.c.id)):
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


def emit_from_book(conn: Connection, account: Any, book: AccountBook, at: datetime,
                   known: Any = None, thresholds: dict | None = None) -> int:
    """Insert the notifications that hold at `at` for the lines of `book`, just saved.

    `account` is the account's row (id, name); `known` a line row (id, msisdn) the
    caller already read, which spares the MSISDN query when only it has notices;
    `thresholds` the lines' picked alert thresholds (the book's snapshot has them).
    Offers the same rows as `emit_notifications` on the stored state."""
    rows = book_rows(conn, account, book, at, known, thresholds)
    _insert(conn, rows)
    return len(rows)


def book_rows(conn: Connection, account: Any, book: AccountBook, at: datetime,
              known: Any = None, thresholds: dict | None = None) -> list[dict]:
    """The outbox rows of `emit_from_book`, without writing them."""
    if book.cycle_start is None or book.cycle_end is None:
        return []
    closed = stored_closed(conn, [account.id], book.cycle_start).get(account.id, [])
    msisdn = _Lazy(lambda: dict(conn.execute(_ACCOUNT_MSISDNS, {"account_id": account.id}).all()),
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
    data buckets the store holds for the account (`stored_closed`; any superset of
    those counting for the cycle gives the same rows) and the lines' MSISDNs. Callers
    pass `domain.notices.decided_at(book, t)` for a change at t (the module docstring).
    `thresholds`: line -> its picked alert thresholds (the snapshot's `alert_thresholds`)."""
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


def stored_closed(conn: Connection, account_ids: list[int],
                  since: datetime | None) -> dict[int, list[Bucket]]:
    """The closed data buckets of several accounts that may count for a cycle starting
    at or after `since` (None: all), in one query: account id -> buckets.

    A superset of those that count for such a cycle (`domain.notices.owner_facts`
    counts an allowance that overlaps the cycle and a rollover that starts in it:
    either ends after the cycle starts), which gives the same notices."""
    if not account_ids:
        return {}
    return closed_from_rows(conn.execute(*closed_query(account_ids, since)))


# Built once: SQLAlchemy memoizes a statement's cache key on the object.
_ACCOUNT_MSISDNS = select(lines.c.id, lines.c.msisdn).where(
    lines.c.account_id == bindparam("account_id"))


def _conditions(line: Any, account: Any, own: dict, pool: dict, used: dict, plans: dict,
                cycle: dict, at: datetime) -> Iterable[tuple[str, dict]]:
    """(kind, numbers) for one stored line: the row-shaped front of `line_conditions`.

    `used` maps (account, line, counter) to the cycle's data counters; `own` and
    `pool` are `_bucket_facts` entries (instants may be naive UTC from SQLite);
    `account` has `cycle_day` and `timezone`: a plan's version is the one in force
    at `at` on the account's calendar."""
    key = (line.account_id, line.id)
    return line_conditions(
        member=bool(line.member), plan_id=line.plan_id, pool_plan_id=account.pool_plan_id,
        data_limit=(line.limits or {}).get("data"),
        spent=used.get((*key, "used"), 0), from_pool=used.get((*key, "pool"), 0),
        own=_aware(own), pool=_aware(pool), plan=_in_force(plans, at, account),
        thresholds=line.alert_thresholds or DEFAULT_THRESHOLDS)


def _in_force(plans: dict, at: datetime, account: Any):
    # The calendar is built only when a line asks for its plan (a throttled/blocked
    # candidate), not for each of a bulk chunk's lines.
    def plan(plan_id: str):
        calendar = CycleCalendar(account.cycle_day, account.timezone)
        return plan_in_force(plans, at, calendar)(plan_id)
    return plan


def _aware(facts: dict) -> dict:
    until = facts.get("expiring_until")
    return {**facts, "expiring_until": utc(until)} if until is not None else facts


def _counters(conn: Connection, account_ids: list[int], starts: list[str],
              cycle: dict[int, str]) -> dict[tuple, int]:
    c = counters.c
    out: dict[tuple, int] = {}
    for row in conn.execute(select(c.account_id, c.cycle_start, c.line, c.name, c.value).where(
            c.account_id.in_(account_ids), c.cycle_start.in_(starts), c.unit == "data",
            c.name.in_(["used", "pool"]))):
        if cycle.get(row.account_id) == row.cycle_start:
            out[(row.account_id, row.line, row.name)] = int(row.value)
    return out


def _bucket_facts(conn: Connection, account_ids: list[int], at: datetime) -> dict[tuple, dict]:
    """Per (account, owner): allowance granted this cycle, usability, rollover facts."""
    b, a = buckets.c, accounts.c
    in_cycle = and_(b.valid_from < a.cycle_end,
                    b.valid_until.is_(None) | (b.valid_until > a.cycle_start))
    allowance = and_(b.kind == "allowance", in_cycle)
    live = and_(b.closed.is_(False), b.valid_from <= at,
                b.valid_until.is_(None) | (b.valid_until > at))
    rollover_new = and_(b.kind == "rollover", b.valid_from >= a.cycle_start,
                        b.valid_from < a.cycle_end)
    expiring = and_(b.kind == "rollover", b.closed.is_(False), b.remaining > 0,
                    b.valid_until > at, b.valid_until <= at + EXPIRING_WITHIN)
    query = (select(
        b.account_id, b.owner,
        func.sum(case((and_(allowance, b.granted.isnot(None)), b.granted), else_=0))
        .label("allowance"),
        func.sum(case((and_(allowance, b.granted.is_(None)), 1), else_=0))
        .label("allowance_unlimited"),
        func.max(case((and_(live, b.remaining.is_(None) | (b.remaining > 0)), 1), else_=0))
        .label("usable"),
        func.sum(case((rollover_new, b.granted), else_=0)).label("rollover_credited"),
        func.sum(case((expiring, b.remaining), else_=0)).label("rollover_expiring"),
        func.min(case((expiring, b.valid_until), else_=None)).label("expiring_until"))
        .join(accounts, a.id == b.account_id)
        .where(b.account_id.in_(account_ids), b.unit == "data")
        .group_by(b.account_id, b.owner))
    out: dict[tuple, dict] = {}
    for row in conn.execute(query):
        until = row.expiring_until
        if isinstance(until, str):  # SQLite's MIN over a CASE loses the column type
            until = datetime.fromisoformat(until)
        out[(row.account_id, row.owner)] = {
            "allowance": int(row.allowance or 0),
            "allowance_unlimited": int(row.allowance_unlimited or 0),
            "usable": int(row.usable or 0),
            "rollover_credited": int(row.rollover_credited or 0),
            "rollover_expiring": int(row.rollover_expiring or 0),
            "expiring_until": until}
    return out


def _insert(conn: Connection, rows: list[dict]) -> None:
    """Offer `rows` to the outbox (store.outbox.offer): a (line, cycle_start, kind)
    already there is left as it is."""
    offer(conn, rows)
