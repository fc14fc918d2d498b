"""The bitemporal ledger (docs/semantics.md): statements do not depend on arrival order.

Any input may arrive late: a back-dated line, top-up, gift, plan change (now or
next cycle), member limit, usage within grace or after it. Whatever the arrival
order, for every line and every cycle of the scenario, the statement built from
the ledger (entries effective in the cycle) equals the statement of the in-order
fold: opening, closing, grants, usage, debits, overage and transfers exactly,
and the other flows by their net (a correction of a booked rollover is an
`adjust`, docs/semantics.md). And, per arrival order:
- opening(C) = closing(C-1);
- closing(C) = what the line's own buckets hold just before C ends;
- every entry is effective inside its bucket's validity as it stood when the entry
  was booked (a boundary's entries sit at the end instant of the bucket they
  close), and a correction either inside it or at the instant of an entry of its
  bucket booked before it: a replay may shorten a bucket's validity (a gift whose
  source changed, a merged pass whose merge no longer happens), and what was
  booked at the old end is taken back where it was booked;
- the corrections a submit books are recorded at the booking instant the caller
  gave (`book.now`), so the entries recorded by step k are exactly the ledger
  as it stood after step k: `as_of` shows what was told then.

Examples: `CARRYOVER_PROPERTY_SCALE` scales them as in test_properties.py.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from carryover.domain import views
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.inputs import Gift, OpenLine, Usage
from carryover.domain.ledger import INFLOWS, OUTFLOWS, EntryKind
from carryover.domain.statement import build_statement

from .test_properties import (
    US,
    examples,
    gift_statuses,
    in_order_book,
    scenarios,
)

EXACT = ("opening", "closing", "grant", "transfer_in", "transfer_out", "used",
         "debit", "debited_own", "debited_pool", "overage")
NETTED = (EntryKind.ROLLOVER_IN, EntryKind.ROLLOVER_OUT, EntryKind.EXPIRE,
          EntryKind.FORFEIT, EntryKind.ADJUST)
BOOKED = datetime(2030, 1, 1, tzinfo=UTC)  # booking instants: step k is BOOKED + k s


@st.composite
def any_arrival(draw):
    """A scenario and an arrival order of all its inputs: anything may come late, but
    an input about a line arrives after that line was opened (else it is refused)."""
    scenario = draw(scenarios())
    pending = list(scenario.inputs())
    pending = [p for p in pending if not (isinstance(p, OpenLine) and p.line == POOL)]
    arrival = [p for p in scenario.openers if p.line == POOL]
    opened = {POOL}
    while pending:
        ready = [p for p in pending if isinstance(p, OpenLine) or (
            p.line in opened and (not isinstance(p, Gift) or p.from_line in opened))]
        item = ready[draw(st.integers(0, len(ready) - 1))]
        pending.remove(item)
        arrival.append(item)
        if isinstance(item, OpenLine):
            opened.add(item.line)
    return scenario, arrival


def statement_of(book: AccountBook, line: str, start, end, as_of=None):
    unlimited = {b.id for b in book.buckets.values() if b.unlimited}
    return build_statement(line, start, end, book.entries, unlimited, as_of=as_of)


def figures(stmt) -> dict:
    out = {}
    for unit, s in stmt.units.items():
        row = s.as_dict()
        net = sum(row[str(k)] * (1 if k in INFLOWS or k is EntryKind.ADJUST else -1)
                  for k in NETTED if k in INFLOWS or k in OUTFLOWS or k is EntryKind.ADJUST)
        out[unit] = {**{k: row[k] for k in EXACT}, "net_other": net}
    return {u: f for u, f in out.items() if any(f.values())}


def cycles(scenario):
    return list(zip(scenario.boundaries, scenario.boundaries[1:], strict=False))


def check_validity(book: AccountBook, start: int, booked_at: dict[str, set[datetime]]
                   ) -> None:
    """The entries booked since index `start` lie inside their bucket's validity as it
    stands now, or, for a correction, at the instant of an entry of that bucket booked
    before them; then they join `booked_at` (bucket id -> effective instants booked)."""
    new = book.entries[start:]
    for e in new:
        bucket = book.buckets.get(e.bucket_id) if e.bucket_id else None
        if bucket is None:
            continue
        inside = bucket.valid_from <= e.effective_at and (
            bucket.valid_until is None or e.effective_at <= bucket.valid_until)
        assert inside or e.effective_at in booked_at[e.bucket_id], (e, bucket)
    for e in new:
        if e.bucket_id:
            booked_at[e.bucket_id].add(e.effective_at)


@settings(max_examples=examples(60), deadline=None)
@given(any_arrival())
def test_every_cycle_statement_equals_the_in_order_fold(case) -> None:
    scenario, arrival = case
    book_a, status_a = in_order_book(scenario)
    book_b = AccountBook(scenario.calendar, scenario.plans)
    status_b: dict[str, str] = {}
    prefix_lengths = []
    booked_at: dict[str, set[datetime]] = defaultdict(set)
    for k, item in enumerate(arrival):
        book_b.record_at(BOOKED + timedelta(seconds=k))
        status_b[item.id] = book_b.submit(item).status
        check_validity(book_b, prefix_lengths[-1] if prefix_lengths else 0, booked_at)
        prefix_lengths.append(len(book_b.entries))
    # A gift moves what is giftable when it is folded; usage arriving after a gift may
    # flip an accepted gift to refused (nothing giftable): not a ledger difference.
    assume(gift_statuses(status_a) == gift_statuses(status_b))
    assume(status_a == status_b)
    # Close the last cycle in both books so its boundary entries exist on both sides.
    book_a.advance_to(scenario.end)
    book_b.record_at(BOOKED + timedelta(seconds=len(arrival)))
    book_b.advance_to(scenario.end)
    check_validity(book_b, prefix_lengths[-1] if prefix_lengths else 0, booked_at)

    lines = [*scenario.lines, *([POOL] if scenario.family else [])]
    for line in lines:
        previous = None
        for start, end in cycles(scenario):
            mine = statement_of(book_b, line, start, end)
            assert figures(mine) == figures(statement_of(book_a, line, start, end)), (
                line, start)
            past = views.position(book_b, end - US)
            for unit, s in mine.units.items():
                assert s.balance_check == 0 and s.usage_check == 0
                held = sum(b.remaining or 0 for b in past.buckets.values()
                           if b.owner == line and b.unit == unit and not b.unlimited)
                assert s.closing == held, (line, unit, start)
                if previous is not None and unit in previous.units:
                    assert s.opening == previous.units[unit].closing
            previous = mine

    # Booked at step k = recorded at BOOKED + k s: the ledger as it stood after step k is
    # exactly what was recorded by then (the boundary entries of the final advance_to
    # were booked after the last step).
    for k, length in enumerate(prefix_lengths):
        told = BOOKED + timedelta(seconds=k)
        assert [e for e in book_b.entries if e.recorded_at <= told] == book_b.entries[:length]


def test_a_late_usage_correction_is_effective_in_its_own_cycle() -> None:
    # Worked example of docs/semantics.md: January's statement shows the late 2 GB in
    # January and February's shows the smaller deposit, whatever day it was booked.
    from .rules_support import GB, at
    from .test_rules_late import J, R, january

    book = january()
    book.record_at(datetime(2026, 2, 2, 9, tzinfo=UTC))
    book.submit(Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2)))
    jan = statement_of(book, "a", at(1, 1), at(2, 1))
    feb = statement_of(book, "a", at(2, 1), at(3, 1))
    assert (jan.units["data"].used, jan.units["data"].closing) == (7 * GB, 3 * GB)
    assert feb.units["data"].opening == 3 * GB
    assert book.buckets[R].remaining == 3 * GB and book.buckets[J].remaining == 0
    told = statement_of(book, "a", at(1, 1), at(2, 1), as_of=book.now - US)
    assert (told.units["data"].used, told.units["data"].closing) == (5 * GB, 5 * GB)
