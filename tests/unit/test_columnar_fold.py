"""The set-based fold equals the object book, bucket by bucket and counter by counter.

Random accounts without a pool (one to three lines on random presets and inline
plans, random bill-cycle days and zones) and random usage over up to three cycles
are folded twice: event by event through AccountBook, and in one pass through the
columnar ColumnarBook. Remaining per bucket, closed flags, ledger totals per
(bucket, line, unit, kind), counters and the cycle cursor must be identical, and
the columnar ledger must fold to its own balances (docs/semantics.md, "The ledger and
conservation").
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.book import AccountBook
from carryover.domain.columnar.state import UNITS
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, Usage
from carryover.domain.ledger import balances, totals
from carryover.domain.plans import plan_from_mapping
from carryover.plan_files import load_presets
from tests.unit.columnar_bridge import columnar_from_books, entries_of, rate, write_back

MB = 1024**2
PLANS = dict(load_presets())
for body in (
    {"id": "roll-cap", "kind": "metered", "allowance": {"data": "300MB", "voice": "60min"},
     "rollover": {"kinds": ["allowance"], "per_cycle_cap": "100MB", "stash_cap": "150MB",
                  "lifetime": {"cycles": 2}, "rolls_again": True},
     "priorities": {"rollover": 5}, "overage": {"action": "block"}},
    {"id": "roll-months", "kind": "metered", "allowance": {"data": "200MB"},
     "rollover": {"kinds": ["allowance"], "lifetime": {"months": 1}},
     "overage": {"action": "throttle", "kbps": "64kbps"}},
):
    PLANS[body["id"]] = plan_from_mapping(body)
PLAN_IDS = [*sorted(p for p in PLANS if PLANS[p].kind.value != "pack"), "travel-5gb-30d"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def accounts(draw):
    out = []
    for a in range(draw(st.integers(1, 4))):
        calendar = CycleCalendar(draw(st.integers(1, 31)), draw(st.sampled_from(ZONES)))
        start, _ = calendar.cycle_at(START)
        start += timedelta(hours=draw(st.sampled_from([0, 0, 7])))
        lines = [(f"a{a}l{n}", draw(st.sampled_from(PLAN_IDS)))
                 for n in range(draw(st.integers(1, 3)))]
        events = []
        for line, _ in lines:
            for k in range(draw(st.integers(0, 12))):
                offset = draw(st.integers(0, 80 * 24 * 3600))
                unit = draw(st.sampled_from(["data", "data", "data", "voice"]))
                amount = draw(st.integers(0, 400)) * (MB if unit == "data" else 60) // 4
                events.append(Usage(f"{line}-e{k}", line, start + timedelta(seconds=offset),
                                    amount, UNITS[["data", "voice"].index(unit)],
                                    draw(st.sampled_from([None, "hotspot"]))))
        out.append((calendar, start, lines, sorted(events, key=lambda e: (e.at, e.id))))
    return out


def books_for(spec):
    books = []
    for calendar, start, lines, _ in spec:
        book = AccountBook(calendar, PLANS)
        for line, plan in lines:
            assert book.submit(OpenLine(f"open:{line}", line, start, plan)).status == "accepted"
        books.append(book)
    return books


def snapshot(book: AccountBook):
    buckets = {b.id: (b.remaining, b.closed, b.valid_until) for b in book.buckets.values()}
    ledger = {k: v for k, v in totals(book.entries).items() if k[4] != "debit" or v}
    counters = {k: v for k, v in book.counters.items() if v}
    return buckets, ledger, counters, book.cycle_start, book.cycle_end


@settings(max_examples=120, deadline=None)
@given(accounts())
def test_columnar_fold_equals_object_book(spec):
    reference = books_for(spec)
    for book, (_, _, _, events) in zip(reference, spec, strict=True):
        for event in events:
            assert book.submit(event).status == "accepted"
        # The columnar fold materializes breakpoints only up to its last event, as
        # the object book does.
    columnar = books_for(spec)
    bulk, line_ids = columnar_from_books(columnar, PLANS, "batch")
    events = [e for *_, evs in spec for e in evs]
    rate(bulk, line_ids, events)
    written = entries_of(bulk, line_ids)
    write_back(bulk, columnar, line_ids)
    for ref, col in zip(reference, columnar, strict=True):
        got, want = snapshot(col), snapshot(ref)
        assert got[0] == want[0]  # every bucket: remaining, closed, expiry
        # Debits are booked per bucket per stretch rather than per event: compare totals.
        assert got[1] == want[1]
        assert got[2] == want[2]
        assert got[3:] == want[3:]
    live = {}
    for col in columnar:
        live.update({b.id: b.remaining for b in col.buckets.values() if not b.unlimited})
    folded = defaultdict(int)
    for col in columnar:
        for key, value in balances(col.entries).items():
            folded[key] += value
    assert {k: folded[k] for k in live} == live
    assert sum(e.amount for e in written if e.kind == "debit") + sum(
        e.amount for e in written if e.kind == "overage") == sum(e.amount for e in events)
