"""Late usage, the grace window and duplicates, one rule per test.

The rules are docs/semantics.md, "Late usage".

Plan "late": 10 GB allowance, rollover for one cycle, rollover drains first
(priority 10, allowance 20), block after all data. UTC, day 1: the January
boundary is Feb 1 00:00Z and the default grace window (48 h) ends Feb 3 00:00Z.
Bucket ids: J = January's allowance, F = February's, R = the Feb 1 deposit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from carryover.domain import views
from carryover.domain.buckets import POOL
from carryover.domain.inputs import OpenLine, Usage
from carryover.domain.ledger import EntryKind, balances

from .rules_support import (
    GB,
    US,
    amounts,
    assert_conserved,
    at,
    available,
    entries,
    new_book,
    plan,
    submit,
    used,
)

LATE = plan("late", allowance={"data": "10GB"}, priorities={"rollover": 10, "allowance": 20},
            rollover={"lifetime": {"cycles": 1}}, overage={"action": "block"})
J = "a/data/allowance/2026-01-01T00:00:00Z"
F = "a/data/allowance/2026-02-01T00:00:00Z"
R = "a/data/rollover/2026-02-01T00:00:00Z#0"
GRACE_END = at(2, 3)


def january(grace: timedelta | None = None):
    """Line a used 5 GB on Jan 10; the book has materialized Feb 1 (R = 5 GB)."""
    book = new_book(LATE, grace=grace)
    submit(book, OpenLine("o", "a", at(1, 1), "late"), Usage("u1", "a", at(1, 10), 5 * GB))
    views.position(book, at(2, 1, 12))
    assert book.buckets[R].granted == 5 * GB
    return book


def corrections(outcome) -> list[tuple]:
    return sorted((str(e.kind), e.bucket_id or "", e.amount) for e in outcome.entries)


def test_late_event_within_grace_is_rated_in_its_own_cycle_and_adjusts_rollover():
    # 2 GB used Jan 31 12:00, reported Feb 2 00:00 (inside the window): January used
    # 5 + 2 = 7 GB, so only 3 GB should have carried. Corrections, recorded at arrival
    # and effective where they belong (the bitemporal ledger, docs/semantics.md):
    # J: debit +2 GB (the late usage) and adjust +2 GB (its rollover_out fell 5 -> 3);
    # R: adjust -2 GB (rollover_in fell 5 -> 3). R ends at 3 GB, J at 0.
    book = january()
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2)))
    assert (out.late, out.replayed) == (False, True)
    assert corrections(out) == sorted([("adjust", J, 2 * GB), ("adjust", R, -2 * GB),
                                       ("debit", J, 2 * GB)])
    assert {e.recorded_at for e in out.entries} == {at(2, 2)}
    # The late usage is January's (its instant); the rollover changes are the Feb 1
    # boundary's, so January's and February's statements both come out as in order.
    assert sorted((str(e.kind), e.bucket_id, e.effective_at) for e in out.entries) == sorted([
        ("adjust", J, at(2, 1)), ("adjust", R, at(2, 1)), ("debit", J, at(1, 31, 12))])
    assert (book.buckets[R].remaining, book.buckets[J].remaining) == (3 * GB, 0)
    assert (used(book, "a", at(1, 1)), used(book, "a", at(2, 1))) == (7 * GB, 0)
    assert available(book, "a", at(2, 2)) == 13 * GB  # R 3 + F 10
    assert_conserved(book)


def test_late_event_moves_excess_down_the_order_when_rollover_was_already_drawn():
    # February used 4 GB on Feb 1 06:00 before the late event arrived: R (priority 10)
    # paid all 4, leaving 1 GB. The late 2 GB shrinks R to 3 GB, so 1 GB of February's
    # usage moves down the order to F: R debit -1 GB, F debit +1 GB (signed debits), plus
    # J debit +2 / adjust +2 and R adjust -2 as in the plain case.
    # R = 5 - 4 + 1 - 2 = 0; F = 10 - 1 = 9 GB.
    book = january()
    submit(book, Usage("u2", "a", at(2, 1, 6), 4 * GB))
    assert book.buckets[R].remaining == GB
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2)))
    assert corrections(out) == sorted([
        ("adjust", J, 2 * GB), ("adjust", R, -2 * GB), ("debit", J, 2 * GB),
        ("debit", R, -GB), ("debit", F, GB)])
    assert (book.buckets[R].remaining, book.buckets[F].remaining) == (0, 9 * GB)
    assert available(book, "a", at(2, 2)) == 9 * GB
    # Per line: 5 + 4 + 2 = 11 GB of usage = 5 + 4 + (2 - 1 + 1) of debits.
    assert sum(amounts(book, EntryKind.DEBIT)) == 11 * GB
    assert_conserved(book)


def test_late_event_within_grace_that_exceeds_its_cycle_is_overage_there():
    # January used 9 GB, so R = 1 GB. A late 2 GB of Jan 31 (reported Feb 2) finds 1 GB
    # left in J: debit +1 GB on J, overage +1 GB in January, no carry at all: R adjust
    # -1 GB -> 0, and J's rollover_out 1 -> 0 (adjust +1).
    book = new_book(LATE)
    submit(book, OpenLine("o", "a", at(1, 1), "late"), Usage("u1", "a", at(1, 10), 9 * GB))
    views.position(book, at(2, 1, 12))
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2)))
    assert corrections(out) == sorted([("adjust", J, GB), ("adjust", R, -GB),
                                       ("debit", J, GB), ("overage", "", GB)])
    # The replay's state has no R at all (nothing carried); its ledger folds to zero.
    assert R not in book.buckets
    assert balances(book.entries)[R] == 0
    assert available(book, "a", at(2, 2)) == 10 * GB
    assert used(book, "a", at(1, 1), "overage") == GB
    assert_conserved(book)


def test_late_event_after_grace_is_rated_at_arrival_and_marked_late():
    # Reported Feb 3 00:00 + 1 us, past the window: rated then, in February, marked late.
    # R (5 GB, drawn first) pays the 2 GB -> 3 GB; the rollover is not corrected (R was
    # granted 5 GB, no adjust); January stays at 5 GB used, February counts 2 GB.
    book = january()
    arrival = GRACE_END + US
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=arrival))
    assert out.late is True
    assert [(str(e.kind), e.bucket_id, e.amount, e.at) for e in out.entries] == [
        ("debit", R, 2 * GB, arrival)]
    assert entries(book, EntryKind.ADJUST) == []
    assert (book.buckets[R].granted, book.buckets[R].remaining) == (5 * GB, 3 * GB)
    assert (used(book, "a", at(1, 1)), used(book, "a", at(2, 1))) == (5 * GB, 2 * GB)
    assert_conserved(book)


@pytest.mark.parametrize(("arrival", "late", "deposit", "jan_used"), [
    (GRACE_END, False, 3 * GB, 7 * GB),  # boundary + grace exactly: still within
    (GRACE_END + US, True, 5 * GB, 5 * GB),  # one microsecond later: final
])
def test_arrival_exactly_at_boundary_plus_grace_counts_as_within(arrival, late, deposit,
                                                                  jan_used):
    book = january()
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=arrival))
    assert out.late is late
    # The book holds the replay's state: R as a full replay grants it.
    assert book.buckets[R].granted == deposit
    assert used(book, "a", at(1, 1)) == jan_used
    assert_conserved(book)


def test_grace_window_is_the_books_setting():
    # With a 1 h window (ends Feb 1 01:00), a January event reported Feb 1 02:00 is late:
    # rated at arrival from R (5 -> 3 GB), January unchanged.
    book = january(grace=timedelta(hours=1))
    [out] = submit(book, Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 1, 2)))
    assert out.late is True
    assert (book.buckets[R].granted, book.buckets[R].remaining) == (5 * GB, 3 * GB)
    assert used(book, "a", at(1, 1)) == 5 * GB


def test_same_event_id_twice_is_counted_once():
    # u counted once (1 GB), even if the second copy claims another instant or amount.
    book = new_book(LATE)
    submit(book, OpenLine("o", "a", at(1, 1), "late"), Usage("u", "a", at(1, 5), GB))
    again = book.submit(Usage("u", "a", at(1, 6), 3 * GB))
    assert again.status == "duplicate" and again.entries == ()
    assert used(book, "a", at(1, 1)) == GB
    assert amounts(book, EntryKind.DEBIT) == [GB]
    assert available(book, "a", at(1, 7)) == 9 * GB
    assert_conserved(book)


def test_a_replayed_late_event_sent_again_is_counted_once():
    # The late 2 GB (within grace) is applied by replay; the network resends it on Feb 2
    # 01:00: a duplicate, R stays at 3 GB and January at 7 GB.
    book = january()
    late = Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2))
    submit(book, late)
    again = book.submit(Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2, 1)))
    assert again.status == "duplicate"
    assert book.buckets[R].remaining == 3 * GB
    assert used(book, "a", at(1, 1)) == 7 * GB
    assert_conserved(book)


def test_pool_rollover_shrunk_by_a_late_event_moves_another_members_excess_down():
    # A pool (10 GB, rollover drains first). m1 used 6 GB on Jan 10 -> pool R = 4 GB on
    # Feb 1; m2 drew all 4 GB from R on Feb 1 06:00. m1's late 2 GB of Jan 31 (reported
    # Feb 2) is January's: R should have been 2 GB, so 2 GB of m2's usage moves to the
    # pool's February allowance. Corrections: pool J debit +2 (m1) and adjust +2; R adjust
    # -2 and debit -2 (m2); pool F debit +2 (m2). R = 4 - 4 - 2 + 2 = 0, F = 10 - 2 = 8.
    pool_plan = plan("plate", allowance={"data": "10GB"}, priorities={"rollover": 10},
                     rollover={})
    book = new_book(pool_plan)
    submit(book, OpenLine("op", POOL, at(1, 1), "plate"),
           OpenLine("o1", "m1", at(1, 1), None, member=True),
           OpenLine("o2", "m2", at(1, 1), None, member=True),
           Usage("u1", "m1", at(1, 10), 6 * GB), Usage("u2", "m2", at(2, 1, 6), 4 * GB))
    pj, pf = "pool/data/allowance/2026-01-01T00:00:00Z", "pool/data/allowance/2026-02-01T00:00:00Z"
    pr = "pool/data/rollover/2026-02-01T00:00:00Z#0"
    [out] = submit(book, Usage("late", "m1", at(1, 31, 12), 2 * GB, received_at=at(2, 2)))
    assert sorted((str(e.kind), e.bucket_id, e.line or "", e.amount) for e in out.entries) == [
        ("adjust", pj, "", 2 * GB), ("adjust", pr, "", -2 * GB),
        ("debit", pj, "m1", 2 * GB), ("debit", pf, "m2", 2 * GB), ("debit", pr, "m2", -2 * GB)]
    assert (book.buckets[pr].remaining, book.buckets[pf].remaining) == (0, 8 * GB)
    assert_conserved(book)
