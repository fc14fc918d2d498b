"""Shared helpers for the rule-by-rule tests (tests/unit/test_rules_*.py).

Each test there checks one rule of docs/semantics.md against the pure domain
(AccountBook and the views), with the expected numbers derived by hand in a
comment. Conventions of the derivations:
- GB = 1024**3 bytes, MB = 1024**2 (docs/semantics.md, "Units").
- Unless a test says otherwise the account is in UTC with bill-cycle day 1, so
  the boundaries are 2026-01-01, 02-01, 03-01, 04-01 at 00:00Z; January has 31
  days, February 28.
- Default priorities (plans.DEFAULT_PRIORITIES): bonus 10, allowance 20,
  rollover 30, topup 40, gift 50; lower drains first.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from carryover.domain import views
from carryover.domain.book import AccountBook, Outcome
from carryover.domain.buckets import Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Input, Usage
from carryover.domain.ledger import Entry, EntryKind, balances, usage_by_line
from carryover.domain.plans import Plan, plan_from_mapping
from carryover.domain.units import Unit
from carryover.plan_files import load_presets

KB = 1024
MB = 1024**2
GB = 1024**3
US = timedelta(microseconds=1)
DATA = Unit.DATA
PRESETS = load_presets()


def at(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       year: int = 2026) -> datetime:
    """An instant in UTC (2026 unless `year` says otherwise)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def plan(plan_id: str, **fields) -> Plan:
    """An inline plan from the plan-file mapping (kind metered unless given)."""
    return plan_from_mapping({"id": plan_id, **fields})


def new_book(*inline: Plan, day: int = 1, tz: str = "UTC",
             grace: timedelta | None = None) -> AccountBook:
    plans = {**PRESETS, **{p.id: p for p in inline}}
    calendar = CycleCalendar(day, tz)
    if grace is None:
        return AccountBook(calendar, plans)
    return AccountBook(calendar, plans, grace)


def submit(book: AccountBook, *items: Input) -> list[Outcome]:
    """Submit in arrival order; every item must be accepted."""
    outcomes = []
    for item in items:
        outcome = book.submit(item)
        assert outcome.status == "accepted", (item, outcome.reason)
        outcomes.append(outcome)
    return outcomes


def state(book: AccountBook, t: datetime) -> AccountBook:
    return views.position(book, t)


def available(book: AccountBook, line: str, t: datetime, unit: Unit = DATA) -> int | None:
    return views.available(state(book, t), line, unit, t)


def qos(book: AccountBook, line: str, t: datetime,
        rating_group: str | None = None) -> tuple[str, int | None]:
    decision = views.qos(state(book, t), line, t, rating_group)
    return decision.state, decision.max_downlink_kbps


def queue(book: AccountBook, line: str, t: datetime, unit: Unit = DATA) -> list[tuple]:
    """(kind, owner, remaining) of the buckets `line` draws at t, in consumption order."""
    return [(str(b.kind), b.owner, b.remaining) for b in state(book, t).queue(line, unit, t)]


def buckets_of(book: AccountBook, owner: str, kind: str | None = None) -> list[Bucket]:
    return sorted((b for b in book.buckets.values() if b.owner == owner
                   and (kind is None or str(b.kind) == kind)),
                  key=lambda b: (b.valid_from, b.id))


def entries(book: AccountBook, kind: EntryKind, bucket_id: str | None = None) -> list[Entry]:
    return [e for e in book.entries if e.kind is kind
            and (bucket_id is None or e.bucket_id == bucket_id)]


def amounts(book: AccountBook, kind: EntryKind, bucket_id: str | None = None) -> list[int]:
    return [e.amount for e in entries(book, kind, bucket_id)]


def used(book: AccountBook, line: str, cycle_start: datetime, name: str = "used",
         unit: Unit = DATA) -> int:
    """A per-cycle counter (used, overage, pool, hotspot) of `line`."""
    return book.counter(cycle_start, line, unit, name)


def assert_conserved(book: AccountBook) -> None:
    """docs/semantics.md, "The ledger and conservation": each bucket's remaining is the
    fold of its entries, and each line's (deduplicated) usage equals its debits plus its
    overage."""
    folded = balances(book.entries)
    limited = {k: b for k, b in book.buckets.items() if not b.unlimited}
    assert {k: b.remaining for k, b in limited.items()} == {k: folded.get(k, 0) for k in limited}
    reported: dict = defaultdict(int)
    for item in book.applied:
        if isinstance(item, Usage):
            reported[(item.line, item.unit)] += item.amount
    got = {k: v for k, v in usage_by_line(book.entries).items() if v}
    assert got == {k: v for k, v in reported.items() if v}
