"""Plan versions in the pure fold (domain/plan_versions.py, docs/semantics.md).

The book asks its catalog for the version in force at each fold instant: so a
version added with a start after some instant changes nothing at or before it,
lines switch at their own account's boundary, and a replay (late usage) folds to
what the incremental path gave.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain import views
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, TopUp, Usage
from carryover.domain.plan_versions import PlanCatalog, PlanVersion
from carryover.domain.plans import plan_from_mapping
from carryover.domain.units import Unit

GB = 1024**3
V1 = plan_from_mapping({"id": "p", "allowance": {"data": "10GB"},
                        "rollover": {"per_cycle_cap": "1GB"}})
V2 = plan_from_mapping({"id": "p", "allowance": {"data": "2GB"}, "priorities": {"topup": 5}})
JAN, FEB, MAR = (datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3))
LOADED = datetime(2026, 1, 15, 9, tzinfo=UTC)


def catalog(second: PlanVersion | None = None) -> PlanCatalog:
    series = [PlanVersion(V1, 1)] + ([second] if second else [])
    return PlanCatalog({"p": series})


def next_boundary_version() -> PlanVersion:
    return PlanVersion(V2, 2, recorded_at=LOADED, next_boundary_after=LOADED)


def test_a_version_is_in_force_from_each_accounts_own_next_boundary():
    cat = catalog(next_boundary_version())
    utc1, ny15 = CycleCalendar(1, "UTC"), CycleCalendar(15, "America/New_York")
    assert cat.at("p", FEB - timedelta(microseconds=1), utc1) is V1
    assert cat.at("p", FEB, utc1) is V2
    # Cycle day 15 in New York: LOADED (15 Jan 09:00Z = 04:00 local) is just after
    # that account's boundary of 15 Jan 05:00Z, so its next boundary is 15 Feb 05:00Z.
    assert cat.at("p", FEB, ny15) is V1
    assert cat.at("p", datetime(2026, 2, 15, 5, tzinfo=UTC), ny15) is V2
    assert cat["p"] is V2 and list(cat) == ["p"]  # as a mapping: the latest
    fixed = catalog(PlanVersion(V2, 2, effective_at=LOADED))
    assert fixed.at("p", LOADED - timedelta(microseconds=1), utc1) is V1
    assert fixed.at("p", LOADED, utc1) is V2


def fold(cat: PlanCatalog, inputs, until: datetime) -> AccountBook:
    book = AccountBook(CycleCalendar(1, "UTC"), cat)
    for item in inputs:
        assert book.submit(item).status == "accepted", item
    return views.position(book, until)


def test_grants_follow_the_version_in_force_at_each_boundary():
    book = fold(catalog(next_boundary_version()), [OpenLine("o", "a", JAN, "p")], MAR)
    grants = sorted((b.valid_from, b.granted) for b in book.buckets.values()
                    if b.kind == "allowance")
    assert grants == [(JAN, 10 * GB), (FEB, 2 * GB), (MAR, 2 * GB)]
    # January's 10 GB roll under version 2 at Feb 1: version 2 has no rollover, so
    # nothing carries (the boundary's instant decides the version, as for the grant).
    assert not [b for b in book.buckets.values() if b.kind == "rollover"]


@st.composite
def histories(draw):
    items = [OpenLine("o", "a", JAN, "p")]
    for n in range(draw(st.integers(0, 8))):
        at = JAN + timedelta(minutes=draw(st.integers(0, 80 * 24 * 60)))
        if draw(st.integers(0, 3)):
            late = timedelta(hours=draw(st.sampled_from([0, 0, 30, 100])))
            items.append(Usage(f"u{n}", "a", at, draw(st.integers(0, 6 * GB)), Unit.DATA,
                               received_at=at + late))
        else:
            items.append(TopUp(f"t{n}", "a", at, draw(st.integers(1, 2 * GB)), valid_days=10))
    return items


def snapshot(book: AccountBook) -> dict:
    return {b.id: (b.remaining, b.closed, b.priority) for b in book.buckets.values()}


@settings(max_examples=60, deadline=None)
@given(histories(), st.booleans())
def test_adding_a_version_changes_nothing_before_it_starts(items, fixed):
    added = (PlanVersion(V2, 2, effective_at=LOADED) if fixed else next_boundary_version())
    start = LOADED if fixed else FEB
    arrival = sorted(items, key=lambda i: (getattr(i, "received_at", None) or i.at, i.id))
    before = [i for i in arrival if i.at < start]
    for t in (JAN + timedelta(days=3), start - timedelta(microseconds=1)):
        assert (snapshot(fold(catalog(), before, t))
                == snapshot(fold(catalog(added), before, t)))
    # Arrival order never matters with versions either: the incremental fold (with
    # its replays) equals the fold of the same inputs in their fold order.
    whole = fold(catalog(added), arrival, MAR)
    book = AccountBook(CycleCalendar(1, "UTC"), catalog(added))
    in_order = sorted(arrival, key=book.key)
    assert snapshot(whole) == snapshot(fold(catalog(added), in_order, MAR))


def test_the_columnar_fold_asks_for_the_same_versions():
    # Two accounts (cycle days 1 and 20) on p, version 2 in force from 1 March: the
    # bulk fold grants and rolls by the version in force at each account's own
    # boundary (version 1 before March, even though version 2 is the latest), exactly
    # as the object book does.

    from tests.unit.columnar_bridge import columnar_from_books, rate, write_back

    cat = catalog(PlanVersion(V2, 2, recorded_at=LOADED, effective_at=MAR))
    events = {0: [Usage("e0", "l0", JAN + timedelta(days=5), 3 * GB),
                  Usage("e1", "l0", MAR + timedelta(days=2), 0)],
              1: [Usage("e2", "l1", JAN + timedelta(days=25), GB),
                  Usage("e3", "l1", MAR + timedelta(days=25), 0)]}

    def opened() -> list[AccountBook]:
        books = []
        for a, day in enumerate((1, 20)):
            book = AccountBook(CycleCalendar(day, "UTC"), cat)
            start, _ = book.calendar.cycle_at(JAN)
            assert book.submit(OpenLine(f"o{a}", f"l{a}", start, "p")).status == "accepted"
            books.append(book)
        return books

    reference = opened()
    for a, book in enumerate(reference):
        for e in events[a]:
            assert book.submit(e).status == "accepted"
    columnar = opened()
    bulk, line_ids = columnar_from_books(columnar, cat, "batch")
    flat = events[0] + events[1]
    order = sorted(range(len(flat)), key=lambda i: flat[i].at)
    flat = [flat[i] for i in order]
    rate(bulk, line_ids, flat)
    write_back(bulk, columnar, line_ids)
    for ref, col in zip(reference, columnar, strict=True):
        assert snapshot(col) == snapshot(ref)
        grants = sorted((e.at, e.amount) for e in ref.entries if e.kind == "grant")
        assert grants == sorted((e.at, e.amount) for e in col.entries if e.kind == "grant")
    # Cycle day 1: Jan 1 and Feb 1 under version 1 (10 GB), Mar 1 under version 2 (2 GB).
    # Cycle day 20: Dec 20, Jan 20, Feb 20 under version 1, Mar 20 under version 2.
    def grants(book):
        return [(e.at.date().isoformat(), e.amount) for e in sorted(
            book.entries, key=lambda e: e.at) if e.kind == "grant"]
    assert grants(columnar[0]) == [("2026-01-01", 10 * GB), ("2026-02-01", 10 * GB),
                                   ("2026-03-01", 2 * GB)]
    assert grants(columnar[1]) == [("2025-12-20", 10 * GB), ("2026-01-20", 10 * GB),
                                   ("2026-02-20", 10 * GB), ("2026-03-20", 2 * GB)]
