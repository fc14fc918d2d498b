"""Boundary work is linear in the live buckets, not in the account's history.

An account gains an allowance bucket (and a deposit) every cycle; the closed ones
stay in its bucket table for the store and the statements. Counting the buckets the
fold looks at (BucketTable.scanned) rather than timing: once the number of live
buckets is steady, crossing twice as many cycles costs exactly twice the work, and
one cycle's work stays below the number of buckets ever made.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.domain.book import AccountBook
from carryover.domain.buckets import BucketTable
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, Usage
from carryover.domain.plans import plan_from_mapping

PLAN = plan_from_mapping({"id": "roll", "allowance": {"data": "1GB", "voice": "10min"},
                          "rollover": {"kinds": ["allowance"], "lifetime": {"cycles": 2}}})


def boundary(k: int) -> datetime:
    year, month = divmod(k, 12)
    return datetime(2026 + year, month + 1, 1, tzinfo=UTC)


def test_crossing_cycles_costs_work_linear_in_the_live_buckets():
    book = AccountBook(CycleCalendar(1, "UTC"), {PLAN.id: PLAN})
    assert book.submit(OpenLine("open", "a", boundary(0), PLAN.id)).status == "accepted"
    book.advance_to(boundary(24))
    table = book.buckets
    assert isinstance(table, BucketTable)
    before = table.scanned
    book.advance_to(boundary(48))
    work_24 = table.scanned - before
    before = table.scanned
    book.advance_to(boundary(96))
    work_48 = table.scanned - before
    # Steady state (each cycle: two allowances, two deposits live): the work per cycle
    # does not grow with the history (scanning every bucket would double it per cycle
    # between the two windows).
    assert work_48 <= 2 * work_24
    # 96 cycles made ~4 buckets each; one cycle looks at a small constant number.
    assert len(table) > 300
    assert work_48 / 48 < 40 < len(table) / 8
    assert len(table.live()) <= 8


def test_usage_draws_only_from_live_buckets_and_balances_do_not_change():
    # A year of monthly usage: the queue of each event is built from the live buckets;
    # the balances are those the fold defines (the rule tests check them in detail),
    # here the same whether the book is fresh or was handed a plain dict of its buckets.
    book = AccountBook(CycleCalendar(1, "UTC"), {PLAN.id: PLAN})
    assert book.submit(OpenLine("open", "a", boundary(0), PLAN.id)).status == "accepted"
    for k in range(12):
        assert book.submit(Usage(f"u{k}", "a", boundary(k).replace(day=10), 300 * 1024**2)
                           ).status == "accepted"
    book.advance_to(boundary(12))
    kept = {k: (b.remaining, b.closed) for k, b in book.buckets.items()}
    # A book restored from a plain dict of buckets still gets the live index.
    book = AccountBook.restore(book.calendar, book.plans, book.grace, lines=book.lines,
                               buckets=dict(book.buckets), counters=book.counters,
                               cursor=book.cursor)
    assert isinstance(book.buckets, BucketTable)
    assert {b.id for b in book.buckets.live()} == {k for k, v in kept.items() if not v[1]}
    # At Jan 1 2027 December's allowances are closed: what was left rolled (no cap),
    # so nothing remains in them.
    assert {k: v for k, v in kept.items() if "allowance/2026-12" in k} == {
        "a/data/allowance/2026-12-01T00:00:00Z": (0, True),
        "a/voice/allowance/2026-12-01T00:00:00Z": (0, True)}
