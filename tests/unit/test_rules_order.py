"""Buckets, their validity and the consumption order, one rule per test.

The rules are docs/semantics.md, "Buckets and the consumption order".

Order: (priority asc, valid_until asc with none last, valid_from asc, a line's own
before the pool's on a full tie, id asc). See rules_support for conventions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.domain.buckets import POOL, Bucket, in_consumption_order
from carryover.domain.inputs import OpenLine, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind

from .rules_support import (
    DATA,
    GB,
    MB,
    US,
    amounts,
    assert_conserved,
    at,
    new_book,
    plan,
    queue,
    submit,
)

# 10 GB allowance; top-ups drain before the allowance (priority 10 < 20).
TOPUP_FIRST = plan("topup-first", allowance={"data": "10GB"},
                   priorities={"topup": 10, "allowance": 20})
# 10 GB allowance with the default priorities: allowance 20 before topup 40.
DEFAULTS = plan("defaults", allowance={"data": "10GB"})


def test_lower_priority_drains_first():
    # topup-first: a 1 GB top-up (priority 10) is drawn before the allowance (20): 1.5 GB
    # of usage takes 1 GB from the top-up and 0.5 GB from the allowance -> 9.5 GB left.
    book = new_book(TOPUP_FIRST)
    submit(book, OpenLine("o", "a", at(1, 1), "topup-first"), TopUp("t", "a", at(1, 2), GB),
           Usage("u", "a", at(1, 3), 3 * GB // 2))
    assert amounts(book, EntryKind.DEBIT, "a/data/topup/t") == [GB]
    assert queue(book, "a", at(1, 4)) == [("allowance", "a", 10 * GB - GB // 2)]
    assert_conserved(book)


def test_default_priorities_drain_allowance_before_topup():
    # Same inputs on the default table (allowance 20 < topup 40): the 1.5 GB comes out of
    # the allowance, 10 - 1.5 = 8.5 GB, and the top-up keeps its 1 GB.
    book = new_book(DEFAULTS)
    submit(book, OpenLine("o", "a", at(1, 1), "defaults"), TopUp("t", "a", at(1, 2), GB),
           Usage("u", "a", at(1, 3), 3 * GB // 2))
    assert queue(book, "a", at(1, 4)) == [
        ("allowance", "a", 10 * GB - 3 * GB // 2), ("topup", "a", GB)]
    assert_conserved(book)


def test_topup_that_expires_first_is_drawn_first_on_a_priority_tie():
    # Priorities tie (topup 10). "long" (Jan 2 + 20 days -> Jan 22) was bought before
    # "short" (Jan 3 + 5 days -> Jan 8), but short expires first so it drains first:
    # 1.5 GB = 1 GB from short + 0.5 GB from long.
    book = new_book(TOPUP_FIRST)
    submit(book, OpenLine("o", "a", at(1, 1), "topup-first"),
           TopUp("long", "a", at(1, 2), GB, valid_days=20),
           TopUp("short", "a", at(1, 3), GB, valid_days=5),
           Usage("u", "a", at(1, 4), 3 * GB // 2))
    assert amounts(book, EntryKind.DEBIT, "a/data/topup/short") == [GB]
    assert amounts(book, EntryKind.DEBIT, "a/data/topup/long") == [GB // 2]
    assert queue(book, "a", at(1, 5)) == [("topup", "a", GB // 2), ("allowance", "a", 10 * GB)]


def test_no_expiry_sorts_last_among_equal_priorities():
    # The engine never creates a bucket without valid_until, so the rule is checked on the
    # order itself: with equal priority, an expiry in 2099 sorts before no expiry at all,
    # even though the open-ended bucket started earlier and has the smaller id.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    never = Bucket("a-never", "x", DATA, BucketKind.BONUS, GB, start, None, 10, False)
    late = Bucket("b-late", "x", DATA, BucketKind.BONUS, GB, start.replace(day=2),
                  datetime(2099, 1, 1, tzinfo=UTC), 10, False)
    assert [b.id for b in in_consumption_order([never, late])] == ["b-late", "a-never"]
    # Priority still comes first: a lower priority without expiry drains before.
    first = Bucket("c-first", "x", DATA, BucketKind.BONUS, GB, start, None, 5, False)
    assert [b.id for b in in_consumption_order([never, late, first])] == [
        "c-first", "b-late", "a-never"]


def test_earlier_valid_from_drains_first_on_priority_and_expiry_tie():
    # Both top-ups end with the cycle (Feb 1) and share priority 10. "z" started Jan 2,
    # "a" Jan 3: z drains first although its id sorts last. 1.5 GB: z 1 GB, a 0.5 GB.
    book = new_book(TOPUP_FIRST)
    submit(book, OpenLine("o", "x", at(1, 1), "topup-first"),
           TopUp("z", "x", at(1, 2), GB), TopUp("a", "x", at(1, 3), GB),
           Usage("u", "x", at(1, 4), 3 * GB // 2))
    assert amounts(book, EntryKind.DEBIT, "x/data/topup/z") == [GB]
    assert amounts(book, EntryKind.DEBIT, "x/data/topup/a") == [GB // 2]


def test_own_bucket_before_pool_bucket_on_a_full_tie():
    # Pool plan: allowance and topup both priority 10. The pool's allowance and member
    # zed's top-up both start Jan 1 00:00 and end Feb 1: a full tie on (priority,
    # valid_until, valid_from). The pool's id "pool/..." sorts before "zed/...", so only
    # the own-before-pool rule (1.8) puts the top-up first: 1.5 GB = 1 GB top-up +
    # 0.5 GB pool -> pool 10 - 0.5 = 9.5 GB.
    fam = plan("fam-tie", allowance={"data": "10GB"}, priorities={"allowance": 10, "topup": 10})
    book = new_book(fam)
    submit(book, OpenLine("op", POOL, at(1, 1), "fam-tie"),
           OpenLine("oz", "zed", at(1, 1), None, member=True),
           TopUp("t", "zed", at(1, 1), GB), Usage("u", "zed", at(1, 2), 3 * GB // 2))
    assert amounts(book, EntryKind.DEBIT, "zed/data/topup/t") == [GB]
    assert queue(book, "zed", at(1, 3)) == [("allowance", POOL, 10 * GB - GB // 2)]
    assert_conserved(book)


def test_id_breaks_a_full_tie():
    # Two top-ups bought at the same instant, same priority, same expiry (Feb 1): the id
    # decides, "x/data/topup/t1" < "x/data/topup/t2", whatever the arrival order.
    book = new_book(TOPUP_FIRST)
    submit(book, OpenLine("o", "x", at(1, 1), "topup-first"),
           TopUp("t2", "x", at(1, 2), GB), TopUp("t1", "x", at(1, 2), GB),
           Usage("u", "x", at(1, 3), 3 * GB // 2))
    assert amounts(book, EntryKind.DEBIT, "x/data/topup/t1") == [GB]
    assert amounts(book, EntryKind.DEBIT, "x/data/topup/t2") == [GB // 2]


def test_bucket_is_usable_from_valid_from_until_just_before_valid_until():
    # A 5-day top-up bought Jan 2 00:00 is valid [Jan 2, Jan 7). It is drawn at
    # Jan 7 - 1 us (priority 10 < allowance 20), not at Jan 7: then the allowance pays.
    book = new_book(TOPUP_FIRST)
    submit(book, OpenLine("o", "a", at(1, 1), "topup-first"),
           TopUp("t", "a", at(1, 2), GB, valid_days=5),
           Usage("before", "a", at(1, 7) - US, MB), Usage("after", "a", at(1, 7), MB))
    assert [(e.ref, e.amount) for e in book.entries if e.kind is EntryKind.DEBIT] == [
        ("before", MB), ("after", MB)]
    assert [e.bucket_id for e in book.entries if e.kind is EntryKind.DEBIT] == [
        "a/data/topup/t", "a/data/allowance/2026-01-01T00:00:00Z"]
    # What is left of it expires at its valid_until: 1 GB - 1 MB.
    expired = [e for e in book.entries if e.kind is EntryKind.EXPIRE]
    assert [(e.bucket_id, e.amount, e.at) for e in expired] == [
        ("a/data/topup/t", GB - MB, at(1, 7))]
    assert_conserved(book)


def test_usage_beyond_every_bucket_is_overage():
    # 10 GB allowance + 1 GB top-up, 12 GB used: 10 + 1 debited, 1 GB is overage.
    book = new_book(DEFAULTS)
    submit(book, OpenLine("o", "a", at(1, 1), "defaults"), TopUp("t", "a", at(1, 2), GB),
           Usage("u", "a", at(1, 3), 12 * GB))
    assert sum(amounts(book, EntryKind.DEBIT)) == 11 * GB
    assert amounts(book, EntryKind.OVERAGE) == [GB]
    assert queue(book, "a", at(1, 4)) == []
    assert_conserved(book)
