"""Overage and QoS, and family pools, limits and gifts, one rule per test.

The rules are docs/semantics.md, "Overage and QoS", and docs/semantics.md, "Family
pools".

See rules_support for conventions. Family accounts here: the pool on plan "fam"
(10 GB, rollover one cycle, throttle to 128 kbps after all data); members m1, m2
without a plan of their own; x a line of the same account outside the pool.
"""

from __future__ import annotations

import pytest

from carryover.domain.buckets import POOL
from carryover.domain.inputs import Gift, OpenLine, SetLimit, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.statement import build_statement

from .rules_support import (
    DATA,
    GB,
    MB,
    amounts,
    assert_conserved,
    at,
    available,
    buckets_of,
    entries,
    new_book,
    plan,
    qos,
    queue,
    submit,
    used,
)

# ---------------------------------------------------------------- overage (1.7)

BLOCK = plan("blk", allowance={"data": "1GB"}, overage={"action": "block"})
THROTTLE = plan("thr", allowance={"data": "1GB"}, overage={"action": "throttle", "kbps": 128})
CHARGE = plan("chg", allowance={"data": "1GB"},
              overage={"action": "charge", "price": "0.29", "currency": "CNY", "per": "1MB"})


@pytest.mark.parametrize(("p", "after"), [(BLOCK, ("blocked", 0)),
                                          (THROTTLE, ("throttled", 128)),
                                          (CHARGE, ("normal", None))])
def test_overage_policy_decides_qos_once_nothing_is_left(p, after):
    # 1 GB allowance, 1.5 GB used: 1 GB debited, 0.5 GB recorded as overage (no bucket),
    # whatever the policy. Before the usage: normal; after: the policy's state.
    book = new_book(p)
    submit(book, OpenLine("o", "a", at(1, 1), p.id))
    assert qos(book, "a", at(1, 5)) == ("normal", None)
    submit(book, Usage("u", "a", at(1, 5), 3 * GB // 2))
    assert qos(book, "a", at(1, 5)) == after
    [over] = entries(book, EntryKind.OVERAGE)
    assert (over.amount, over.bucket_id, over.line) == (GB // 2, None, "a")
    assert used(book, "a", at(1, 1), "overage") == GB // 2
    assert_conserved(book)


def test_usage_while_blocked_is_still_recorded():
    # Nothing is dropped: 1 MB more after the block is another overage entry.
    book = new_book(BLOCK)
    submit(book, OpenLine("o", "a", at(1, 1), "blk"), Usage("u1", "a", at(1, 5), GB),
           Usage("u2", "a", at(1, 6), MB))
    assert amounts(book, EntryKind.OVERAGE) == [MB]
    assert used(book, "a", at(1, 1)) == GB + MB
    assert_conserved(book)


@pytest.mark.parametrize(("overage", "charge"), [
    (512 * MB, "148.48 CNY"),  # 512 increments * 0.29
    (512 * MB + 1, "148.77 CNY"),  # a started increment counts: ceil -> 513 * 0.29
])
def test_charge_is_computed_in_the_statement(overage, charge):
    book = new_book(CHARGE)
    submit(book, OpenLine("o", "a", at(1, 1), "chg"), Usage("u", "a", at(1, 5), GB + overage))
    statement = build_statement("a", at(1, 1), at(2, 1), book.entries, set(), CHARGE)
    data = statement.units[DATA]
    assert (data.used, data.debited_own, data.overage, data.charge) == (
        GB + overage, GB, overage, charge)


# ---------------------------------------------------------------- family pools (1.8)

FAM = plan("fam", allowance={"data": "10GB"}, rollover={},
           overage={"action": "throttle", "kbps": 128})
SOLO = plan("solo", allowance={"data": "1GB"}, overage={"action": "block"})


def family(*extra, limits: dict | None = None):
    book = new_book(FAM, SOLO, *extra)
    submit(book, OpenLine("op", POOL, at(1, 1), "fam"),
           OpenLine("o1", "m1", at(1, 1), None, member=True),
           OpenLine("o2", "m2", at(1, 1), None, member=True),
           OpenLine("ox", "x", at(1, 1), "solo"))
    for line, amount in (limits or {}).items():
        submit(book, SetLimit(f"lim-{line}", line, at(1, 1), amount))
    return book


POOL_JAN = "pool/data/allowance/2026-01-01T00:00:00Z"


def test_pool_is_drawn_by_members_only():
    # x (not a member, 1 GB of its own) uses 2 GB: 1 GB own, 1 GB overage, pool untouched.
    # m1 uses 3 GB: all from the pool (debit owned by the pool, caused by m1): 7 GB left.
    book = family()
    submit(book, Usage("ux", "x", at(1, 5), 2 * GB), Usage("u1", "m1", at(1, 6), 3 * GB))
    assert [(e.line, e.amount) for e in entries(book, EntryKind.DEBIT, POOL_JAN)] == [
        ("m1", 3 * GB)]
    assert amounts(book, EntryKind.OVERAGE) == [GB]
    assert queue(book, "x", at(1, 7)) == []
    assert qos(book, "x", at(1, 7)) == ("blocked", 0)
    assert queue(book, "m2", at(1, 7)) == [("allowance", POOL, 7 * GB)]
    assert_conserved(book)


def test_member_limit_caps_pool_take_and_applies_the_pool_overage_to_that_line_only():
    # m1 limited to 2 GB per cycle uses 3 GB: 2 GB from the pool, 1 GB overage. m1 has
    # nothing left -> the pool plan's policy: throttled 128 kbps. m2 is unaffected: the
    # pool's 8 GB, normal.
    book = family(limits={"m1": 2 * GB})
    submit(book, Usage("u1", "m1", at(1, 5), 3 * GB))
    assert amounts(book, EntryKind.DEBIT, POOL_JAN) == [2 * GB]
    assert amounts(book, EntryKind.OVERAGE) == [GB]
    assert used(book, "m1", at(1, 1), "pool") == 2 * GB
    assert (available(book, "m1", at(1, 6)), qos(book, "m1", at(1, 6))) == (0, ("throttled",
                                                                               128))
    assert (available(book, "m2", at(1, 6)), qos(book, "m2", at(1, 6))) == (8 * GB,
                                                                           ("normal", None))
    assert_conserved(book)


def test_member_limit_resets_at_the_boundary():
    # Same as above; Feb 1: the pool holds 10 GB + 8 GB rolled over; m1 may take 2 GB again,
    # m2 all 18 GB.
    book = family(limits={"m1": 2 * GB})
    submit(book, Usage("u1", "m1", at(1, 5), 3 * GB))
    assert available(book, "m1", at(2, 1)) == 2 * GB
    assert available(book, "m2", at(2, 1)) == 18 * GB
    assert qos(book, "m1", at(2, 1)) == ("normal", None)


def test_member_with_own_plan_past_its_limit_gets_the_pool_plan_policy():
    # m3 is a member with its own "solo" plan (1 GB, block) and a 1 GB pool limit. Own and
    # pool allowances tie on (20, Feb 1, Jan 1): own first. 3 GB = 1 own + 1 pool + 1
    # overage. Past its limit it gets the pool plan's policy (throttle 128), not solo's.
    book = family()
    submit(book, OpenLine("o3", "m3", at(1, 1), "solo", member=True),
           SetLimit("lim", "m3", at(1, 1), GB), Usage("u3", "m3", at(1, 5), 3 * GB))
    assert [(e.owner, e.amount) for e in entries(book, EntryKind.DEBIT)] == [
        ("m3", GB), (POOL, GB)]
    assert qos(book, "m3", at(1, 6)) == ("throttled", 128)
    assert_conserved(book)


def test_gift_keeps_the_source_expiry():
    # m1 buys 2 GB on Jan 5 for 10 days (-> Jan 15) and gifts 1 GB to m2 on Jan 6: m2 gets
    # a gift bucket of 1 GB valid [Jan 6, Jan 15) at fam's gift priority (50); m1 keeps
    # 1 GB. Unused, the gift expires with its source on Jan 15.
    book = family()
    submit(book, TopUp("t", "m1", at(1, 5), 2 * GB, valid_days=10),
           Gift("g", "m1", "m2", at(1, 6), GB))
    [gift] = buckets_of(book, "m2", "gift")
    assert (gift.granted, gift.valid_from, gift.valid_until, gift.priority) == (
        GB, at(1, 6), at(1, 15), 50)
    assert book.buckets["m1/data/topup/t"].remaining == GB
    assert amounts(book, EntryKind.TRANSFER_OUT, "m1/data/topup/t") == [GB]
    assert amounts(book, EntryKind.TRANSFER_IN, gift.id) == [GB]
    assert available(book, "m2", at(1, 15)) == 10 * GB
    assert [(e.amount, e.at) for e in entries(book, EntryKind.EXPIRE, gift.id)] == [
        (GB, at(1, 15))]
    assert_conserved(book)


def test_gift_from_rollover_and_topup_keeps_each_source_expiry():
    # m3 on "own" (1 GB, rollover one cycle). Feb 1: R = 1 GB until Mar 1. Top-up 2 GB on
    # Feb 2 for 30 days (-> Mar 4). Gift 1.5 GB on Feb 3: sources in consumption order,
    # R (30) then top-up (40): 1 GB until Mar 1 and 0.5 GB until Mar 4.
    own = plan("own", allowance={"data": "1GB"}, rollover={})
    book = family(own)
    submit(book, OpenLine("o3", "m3", at(1, 1), "own", member=True),
           TopUp("t", "m3", at(2, 2), 2 * GB, valid_days=30),
           Gift("g", "m3", "m2", at(2, 3), 3 * GB // 2))
    assert [(b.granted, b.valid_until) for b in buckets_of(book, "m2", "gift")] == [
        (GB, at(3, 1)), (GB // 2, at(3, 4))]
    assert book.buckets["m3/data/topup/t"].remaining == 3 * GB // 2
    assert [b.remaining for b in buckets_of(book, "m3", "rollover")] == [0]
    assert_conserved(book)


def test_gift_only_from_rollover_or_topup():
    # m3 holds only its 1 GB allowance (and draws the pool): nothing is giftable, so even a
    # 1-byte gift is refused under either reading of an oversized gift (see below).
    book = family()
    submit(book, OpenLine("o3", "m3", at(1, 1), "solo", member=True))
    before = len(book.entries)
    out = book.submit(Gift("g", "m3", "m2", at(1, 5), 1))
    assert out.status == "rejected" and "giftable" in out.reason
    assert len(book.entries) == before


def test_gift_never_moves_more_than_is_giftable():
    # A gift larger than what is giftable moves what there is (docs/semantics.md, "Family
    # pools"), the same at arrival and in any replay, so arrival order cannot change the
    # balances; refusing it whole would also be safe. Both must hold to this: m1 has a 2 GB
    # top-up and asks to give 2 GB + 1 byte; at most 2 GB leaves m1, all of it arrives at
    # m2, m1's top-up never goes below zero, and a refusal writes no entry.
    book = family()
    submit(book, TopUp("t", "m1", at(1, 5), 2 * GB))
    before = len(book.entries)
    out = book.submit(Gift("g1", "m1", "m2", at(1, 6), 2 * GB + 1))
    moved = sum(amounts(book, EntryKind.TRANSFER_OUT))
    assert moved == sum(amounts(book, EntryKind.TRANSFER_IN))
    if out.status == "rejected":
        assert len(book.entries) == before
        assert book.buckets["m1/data/topup/t"].remaining == 2 * GB
    else:
        assert moved == 2 * GB
        assert book.buckets["m1/data/topup/t"].remaining == 0
    assert_conserved(book)


def test_gift_of_exactly_what_is_giftable_is_accepted():
    # 2 GB top-up, 2 GB gift: all of it moves; m1's top-up is empty, m2 has a 2 GB gift.
    book = family()
    submit(book, TopUp("t", "m1", at(1, 5), 2 * GB), Gift("g", "m1", "m2", at(1, 6), 2 * GB))
    assert book.buckets["m1/data/topup/t"].remaining == 0
    assert [b.granted for b in buckets_of(book, "m2", "gift")] == [2 * GB]
    assert_conserved(book)


def test_gift_only_within_the_account():
    # A line this account does not hold cannot receive (or send) a gift.
    book = family()
    submit(book, TopUp("t", "m1", at(1, 5), 2 * GB))
    assert book.submit(Gift("g", "m1", "stranger", at(1, 6), GB)).status == "rejected"
    assert book.submit(Gift("g", "stranger", "m1", at(1, 6), GB)).status == "rejected"
    assert book.submit(Gift("g", "m1", "m1", at(1, 6), GB)).status == "rejected"


def test_gifts_conserve_bytes():
    # Three gifts between m1 and m2: everything transferred out arrives, byte for byte
    # (1 + 0.5 + 0.25 GB = 1.75 GB each way in total), and every bucket folds exactly.
    book = family()
    submit(book, TopUp("t1", "m1", at(1, 5), 2 * GB), TopUp("t2", "m2", at(1, 5), GB),
           Gift("g1", "m1", "m2", at(1, 6), GB), Gift("g2", "m2", "m1", at(1, 7), GB // 2),
           Gift("g3", "m1", "m2", at(1, 8), GB // 4), Usage("u", "m2", at(1, 9), 11 * GB))
    out = sum(amounts(book, EntryKind.TRANSFER_OUT))
    assert out == sum(amounts(book, EntryKind.TRANSFER_IN)) == GB + GB // 2 + GB // 4
    assert_conserved(book)


def test_pool_buckets_are_not_giftable_and_the_pool_receives_no_gift():
    # Gifts are between member lines (1.8). m1 is limited to 1 GB of pool data and the pool
    # carries 10 GB into February: a gift "from" the pool would hand m1 pool bytes outside
    # its limit, so it is refused, and so is a gift of m1's top-up to the pool.
    book = family(limits={"m1": GB})
    submit(book, TopUp("t", "m1", at(2, 2), GB))
    before = len(book.entries)
    assert book.submit(Gift("g1", POOL, "m1", at(2, 2), 5 * GB)).status == "rejected"
    assert book.submit(Gift("g2", "m1", POOL, at(2, 2), GB)).status == "rejected"
    assert len(book.entries) == before
    assert available(book, "m1", at(2, 2)) == 2 * GB  # its 1 GB top-up + 1 GB of pool


def test_planless_member_topup_rolls_under_the_pool_plan():
    # The pool plan rolls allowance and top-ups. m1 (no plan of its own) buys 1 GB on Jan 20
    # (ends Feb 1): the top-up takes the pool plan's priority and rollable flag, so at
    # Feb 1 its 1 GB carries into a rollover bucket of m1's instead of expiring.
    famtop = plan("famtop", allowance={"data": "10GB"},
                  rollover={"kinds": ["allowance", "topup"]})
    book = new_book(famtop)
    submit(book, OpenLine("op", POOL, at(1, 1), "famtop"),
           OpenLine("o1", "m1", at(1, 1), None, member=True), TopUp("t", "m1", at(1, 20), GB))
    assert book.buckets["m1/data/topup/t"].rollable is True
    assert available(book, "m1", at(2, 1)) == 21 * GB  # pool 10 + pool R 10 + m1's R 1
    assert [b.granted for b in buckets_of(book, "m1", "rollover")] == [GB]
