"""Plans and policies, one rule per test.

The rules are docs/semantics.md, "Cycles and rollover at the boundary instant" (the
first cycle), docs/semantics.md, "Plan changes", and docs/plan-files.md.

Proration, plan changes (now / next cycle, forfeit of rollover), top-ups (stack /
merge, validity), packs and unlimited plans. See rules_support for conventions.
"""

from __future__ import annotations

import pytest

from carryover.domain import views
from carryover.domain.inputs import ChangePlan, OpenLine, TopUp, Usage
from carryover.domain.ledger import EntryKind

from .rules_support import (
    GB,
    MB,
    US,
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
)

# ---------------------------------------------------------------- first cycle (1.2)


@pytest.mark.parametrize(("opened", "granted"), [
    # Cycle Jan 1 - Feb 1 = 31 days = 2,678,400 s.
    (at(1, 11), 677),  # 21 days left: 1000 * 21 / 31 = 677.4 -> 677 (rounded down)
    # 20 d 11:59:30 left = 1,771,170 s: 1000 * 1771170 / 2678400 = 661.28 -> 661
    (at(1, 11, 12, 0, 30), 661),
    (at(1, 1), 1000),  # opened at the cycle start: nothing to prorate
])
def test_first_partial_cycle_is_prorated_by_seconds_rounding_down(opened, granted):
    p = plan("pr", allowance={"data": 1000})
    book = new_book(p)
    submit(book, OpenLine("o", "a", opened, "pr"))
    [first] = buckets_of(book, "a", "allowance")
    assert (first.granted, first.valid_from, first.valid_until) == (granted, opened, at(2, 1))
    assert available(book, "a", at(2, 1)) == 1000  # the next cycle is whole


def test_prorated_10gb():
    # 10 GB = 10,737,418,240 bytes * 21/31 = 7,273,734,936.77 -> 7,273,734,936.
    p = plan("pr10", allowance={"data": "10GB"})
    book = new_book(p)
    submit(book, OpenLine("o", "a", at(1, 11), "pr10"))
    assert available(book, "a", at(1, 11)) == 7_273_734_936


def test_first_cycle_full_grants_the_whole_allowance():
    # first_cycle: full -> 1000 bytes on Jan 11, valid from the opening to Feb 1.
    p = plan("full", allowance={"data": 1000}, first_cycle="full")
    book = new_book(p)
    submit(book, OpenLine("o", "a", at(1, 11), "full"))
    [first] = buckets_of(book, "a", "allowance")
    assert (first.granted, first.valid_from, first.valid_until) == (1000, at(1, 11), at(2, 1))


# ---------------------------------------------------------------- plan changes (1.6)

OLD_KEEP = plan("old-keep", allowance={"data": "10GB"}, rollover={})
OLD_FORFEIT = plan("old-forfeit", allowance={"data": "10GB"},
                   rollover={"forfeit_on_plan_change": True})
NEW = plan("new", allowance={"data": "31GB"})  # 31 GB * 21/31 days = 21 GB exactly


def test_plan_change_now_forfeits_old_allowance_and_prorates_the_new():
    # Opened Jan 1 on old-keep, 4 GB used Jan 5 -> 6 GB left. Change now on Jan 11: the
    # 6 GB are forfeited; new grants 31 GB * 21/31 = 21 GB from Jan 11 to Feb 1.
    # Feb 1: new's full 31 GB; its January remainder does not roll (no rollover policy).
    book = new_book(OLD_KEEP, NEW)
    submit(book, OpenLine("o", "a", at(1, 1), "old-keep"), Usage("u", "a", at(1, 5), 4 * GB),
           ChangePlan("c", "a", at(1, 11), "new"))
    jan = "a/data/allowance/2026-01-01T00:00:00Z"
    assert [(e.amount, e.at) for e in entries(book, EntryKind.FORFEIT, jan)] == [
        (6 * GB, at(1, 11))]
    assert queue(book, "a", at(1, 11)) == [("allowance", "a", 21 * GB)]
    assert book.lines["a"].plan_id == "new"
    assert available(book, "a", at(2, 1)) == 31 * GB
    assert buckets_of(book, "a", "rollover") == []
    assert_conserved(book)


@pytest.mark.parametrize(("old", "kept"), [(OLD_KEEP, 10 * GB), (OLD_FORFEIT, 0)])
def test_forfeit_on_plan_change_applies_to_rollover(old, kept):
    # Opened Dec 1 2025: December's unused 10 GB roll into R (Jan 1 - Feb 1). Change now
    # on Jan 11: R is kept (old-keep) or forfeited (old-forfeit, a forfeit of 10 GB).
    # Jan 11: new's 21 GB + what is kept.
    book = new_book(old, NEW)
    submit(book, OpenLine("o", "a", at(12, 1, year=2025), old.id),
           ChangePlan("c", "a", at(1, 11), "new"))
    [deposit] = buckets_of(book, "a", "rollover")
    assert available(book, "a", at(1, 11)) == 21 * GB + kept
    assert amounts(book, EntryKind.FORFEIT, deposit.id) == ([] if kept else [10 * GB])
    assert_conserved(book)


def test_plan_change_next_cycle_applies_at_the_boundary():
    # Change asked Jan 11 for the next cycle: January stays on old-keep (6 GB left on
    # Jan 20, nothing forfeited). At Feb 1 the old plan's rollover runs (6 GB, until
    # Mar 1), then the new plan grants its full 31 GB: 37 GB.
    book = new_book(OLD_KEEP, NEW)
    submit(book, OpenLine("o", "a", at(1, 1), "old-keep"), Usage("u", "a", at(1, 5), 4 * GB),
           ChangePlan("c", "a", at(1, 11), "new", effective="next_cycle"))
    assert available(book, "a", at(1, 20)) == 6 * GB
    assert book.lines["a"].plan_id == "old-keep"
    assert entries(book, EntryKind.FORFEIT) == []
    assert available(book, "a", at(2, 1)) == 37 * GB
    assert book.lines["a"].plan_id == "new"
    [deposit] = buckets_of(book, "a", "rollover")
    assert (deposit.granted, deposit.valid_until) == (6 * GB, at(3, 1))
    assert_conserved(book)


def test_plan_change_next_cycle_with_forfeit_drops_the_rollover_made_at_that_boundary():
    # Reading tested (AT&T "forfeited on any plan change"): the old plan forfeits its
    # rollover, including the deposit made from its last cycle at the change's boundary.
    # Feb 1: 6 GB rolled in, then forfeited at the same instant; 31 GB available.
    book = new_book(OLD_FORFEIT, NEW)
    submit(book, OpenLine("o", "a", at(1, 1), "old-forfeit"),
           Usage("u", "a", at(1, 5), 4 * GB),
           ChangePlan("c", "a", at(1, 11), "new", effective="next_cycle"))
    assert available(book, "a", at(2, 1)) == 31 * GB
    [deposit] = buckets_of(book, "a", "rollover")
    assert amounts(book, EntryKind.ROLLOVER_IN, deposit.id) == [6 * GB]
    assert [(e.amount, e.at) for e in entries(book, EntryKind.FORFEIT, deposit.id)] == [
        (6 * GB, at(2, 1))]
    assert_conserved(book)


# ---------------------------------------------------------------- top-ups (1.6)

STACK = plan("stack", allowance={"data": "10GB"}, topup={"mode": "stack"})
MERGE = plan("merge", allowance={"data": "10GB"}, topup={"mode": "merge"},
             priorities={"topup": 10})


def test_topup_stack_keeps_each_pass_with_its_own_expiry():
    # 1 GB Jan 5 for 10 days (-> Jan 15) and 2 GB Jan 10 for 10 days (-> Jan 20): two
    # buckets. On Jan 16 the first has expired (1 GB): 10 + 2 = 12 GB.
    book = new_book(STACK)
    submit(book, OpenLine("o", "a", at(1, 1), "stack"),
           TopUp("t1", "a", at(1, 5), GB, valid_days=10),
           TopUp("t2", "a", at(1, 10), 2 * GB, valid_days=10))
    assert [(b.granted, b.valid_until) for b in buckets_of(book, "a", "topup")] == [
        (GB, at(1, 15)), (2 * GB, at(1, 20))]
    assert available(book, "a", at(1, 16)) == 12 * GB
    assert amounts(book, EntryKind.EXPIRE, "a/data/topup/t1") == [GB]
    assert_conserved(book)


def test_topup_merge_adds_to_the_live_pass_and_extends_its_expiry():
    # Merge, top-ups drain first. t1 1 GB (Jan 5 -> Jan 15); 512 MB used Jan 6 from it;
    # t2 2 GB on Jan 10 (-> Jan 20) goes into t1's bucket: granted 3 GB, remaining
    # 0.5 + 2 = 2.5 GB, valid until Jan 20. On Jan 16 it is still there: 10 + 2.5 GB.
    book = new_book(MERGE)
    submit(book, OpenLine("o", "a", at(1, 1), "merge"),
           TopUp("t1", "a", at(1, 5), GB, valid_days=10), Usage("u", "a", at(1, 6), 512 * MB),
           TopUp("t2", "a", at(1, 10), 2 * GB, valid_days=10))
    [merged] = buckets_of(book, "a", "topup")
    assert (merged.id, merged.granted, merged.remaining, merged.valid_until) == (
        "a/data/topup/t1", 3 * GB, 5 * GB // 2, at(1, 20))
    assert amounts(book, EntryKind.GRANT, merged.id) == [GB, 2 * GB]
    assert available(book, "a", at(1, 16)) == 10 * GB + 5 * GB // 2
    assert_conserved(book)


def test_topup_merge_keeps_the_later_expiry():
    # t2 bought Jan 10 for 1 day (-> Jan 11) merges into t1 (-> Jan 15): the pass keeps
    # Jan 15, the later of the two.
    book = new_book(MERGE)
    submit(book, OpenLine("o", "a", at(1, 1), "merge"),
           TopUp("t1", "a", at(1, 5), GB, valid_days=10),
           TopUp("t2", "a", at(1, 10), GB, valid_days=1))
    [merged] = buckets_of(book, "a", "topup")
    assert (merged.granted, merged.valid_until) == (2 * GB, at(1, 15))


def test_topup_without_validity_lasts_to_the_cycle_end():
    # Bought Jan 20 with no valid_days: valid [Jan 20, Feb 1); not rollable by default,
    # so its 1 GB expires at Feb 1 and is not in the queue then.
    book = new_book(STACK)
    submit(book, OpenLine("o", "a", at(1, 1), "stack"), TopUp("t", "a", at(1, 20), GB))
    [top] = buckets_of(book, "a", "topup")
    assert (top.valid_from, top.valid_until, top.rollable) == (at(1, 20), at(2, 1), False)
    assert ("topup", "a", GB) in queue(book, "a", at(2, 1) - US)
    assert queue(book, "a", at(2, 1)) == [("allowance", "a", 10 * GB)]
    assert [(e.amount, e.at) for e in entries(book, EntryKind.EXPIRE, top.id)] == [
        (GB, at(2, 1))]


def test_topup_without_validity_ends_at_local_midnight_of_the_cycle_end():
    # New York, day 1: bought Jan 20 12:00Z, it ends Feb 1 00:00 EST = 05:00Z.
    book = new_book(STACK, tz="America/New_York")
    submit(book, OpenLine("o", "a", at(1, 1, 5), "stack"), TopUp("t", "a", at(1, 20, 12), GB))
    assert buckets_of(book, "a", "topup")[0].valid_until == at(2, 1, 5)


# ---------------------------------------------------------------- packs (1.6, 1.10)


def test_pack_is_one_grant_for_n_local_days_and_never_regranted():
    # travel-5gb-30d opened Jan 10 12:00Z: one 5 GB bucket until Feb 9 12:00Z (30 days).
    # 1 GB used Jan 20. Feb 1 (a boundary) grants nothing and the pack lives on (4 GB).
    # At Feb 9 12:00 the 4 GB expire: nothing left, blocked; Mar 1 grants nothing either.
    book = new_book()
    submit(book, OpenLine("o", "a", at(1, 10, 12), "travel-5gb-30d"),
           Usage("u", "a", at(1, 20), GB))
    assert available(book, "a", at(2, 1)) == 4 * GB
    assert available(book, "a", at(2, 9, 12) - US) == 4 * GB
    assert available(book, "a", at(2, 9, 12)) == 0
    assert qos(book, "a", at(2, 9, 12)) == ("blocked", 0)
    assert available(book, "a", at(3, 1)) == 0
    [pack] = buckets_of(book, "a")
    assert (pack.granted, pack.valid_from, pack.valid_until) == (5 * GB, at(1, 10, 12),
                                                                 at(2, 9, 12))
    assert len(entries(book, EntryKind.GRANT)) == 1
    assert [(e.amount, e.at) for e in entries(book, EntryKind.EXPIRE, pack.id)] == [
        (4 * GB, at(2, 9, 12))]
    assert_conserved(book)


def test_pack_validity_counts_local_days_across_dst():
    # New York: opened Mar 1 12:00 EST (17:00Z); 30 local days later is Mar 31 12:00 EDT
    # (16:00Z), 29 days 23 hours of elapsed time.
    book = new_book(tz="America/New_York")
    submit(book, OpenLine("o", "a", at(3, 1, 17), "travel-5gb-30d"))
    assert buckets_of(book, "a")[0].valid_until == at(3, 31, 16)


# ---------------------------------------------------------------- unlimited (1.6, 1.7)


def test_unlimited_has_no_available_figure_and_no_overage():
    # tmobile-go5g: available is None (no cap); 150 GB used is all debited, no overage.
    book = new_book()
    submit(book, OpenLine("o", "a", at(1, 1), "tmobile-go5g"),
           Usage("u", "a", at(1, 10), 150 * GB))
    assert available(book, "a", at(1, 11)) is None
    assert entries(book, EntryKind.OVERAGE) == []
    assert sum(amounts(book, EntryKind.DEBIT)) == 150 * GB


def test_unlimited_is_deprioritized_past_the_premium_threshold_until_the_cycle_ends():
    # go5g premium 100 GB: 100 GB - 1 byte used -> normal; one more byte -> 100 GB used,
    # deprioritized (no speed cap). Feb 1: the counter starts again -> normal.
    book = new_book()
    submit(book, OpenLine("o", "a", at(1, 1), "tmobile-go5g"),
           Usage("u1", "a", at(1, 10), 100 * GB - 1))
    assert qos(book, "a", at(1, 10)) == ("normal", None)
    submit(book, Usage("u2", "a", at(1, 11), 1))
    assert qos(book, "a", at(1, 11)) == ("deprioritized", None)
    assert qos(book, "a", at(2, 1)) == ("normal", None)


def test_unlimited_throttled_variant():
    # Inline unlimited plan: premium 10 GB, then throttled to 512 kbps.
    p = plan("unl-thr", kind="unlimited", allowance={"data": "unlimited"},
             unlimited={"premium": "10GB", "after_premium": "throttled",
                        "after_premium_kbps": "512kbps"})
    book = new_book(p)
    submit(book, OpenLine("o", "a", at(1, 1), "unl-thr"), Usage("u", "a", at(1, 5), 10 * GB))
    assert qos(book, "a", at(1, 5)) == ("throttled", 512)
    assert available(book, "a", at(1, 5)) is None


def test_hotspot_allowance_throttles_only_hotspot_traffic():
    # go5g hotspot 50 GB then 600 kbps. 50 GB - 1 of hotspot usage: still normal; one more
    # hotspot byte -> hotspot traffic throttled to 600 kbps, other traffic normal (50 GB
    # total is under the 100 GB premium threshold).
    book = new_book()
    submit(book, OpenLine("o", "a", at(1, 1), "tmobile-go5g"),
           Usage("h1", "a", at(1, 5), 50 * GB - 1, rating_group="hotspot"))
    assert qos(book, "a", at(1, 5), "hotspot") == ("normal", None)
    submit(book, Usage("h2", "a", at(1, 6), 1, rating_group="hotspot"))
    assert qos(book, "a", at(1, 6), "hotspot") == ("throttled", 600)
    assert qos(book, "a", at(1, 6)) == ("normal", None)


def test_non_hotspot_usage_does_not_count_toward_the_hotspot_allowance():
    # 60 GB of ordinary traffic: over the 50 GB hotspot figure, but none of it hotspot.
    book = new_book()
    submit(book, OpenLine("o", "a", at(1, 1), "tmobile-go5g"),
           Usage("u", "a", at(1, 5), 60 * GB))
    assert qos(book, "a", at(1, 5), "hotspot") == ("normal", None)
    assert views.check(book, "a", at(1, 5))["qos"] == {"state": "normal",
                                                        "max_downlink_kbps": None}


def test_a_plan_may_carry_a_price_per_cycle():
    from decimal import Decimal

    from carryover.domain.plans import PlanError, PlanPrice, plan_from_mapping

    plan = plan_from_mapping({"id": "p", "allowance": {"data": "1GB"},
                              "price": {"amount": "30.10", "currency": "USD"}})
    assert plan.price == PlanPrice(Decimal("30.10"), "USD")
    assert plan_from_mapping({"id": "q", "allowance": {"data": "1GB"}}).price is None
    with pytest.raises(PlanError) as caught:
        plan_from_mapping({"id": "p", "allowance": {"data": "1GB"},
                           "price": {"amount": 30.1, "currency": "usd"}})
    assert sorted(p.field for p in caught.value.problems) == ["price.amount",
                                                              "price.currency"]


def test_a_price_is_an_amount_per_cycle_or_per_pack_and_the_first_name_still_reads():
    from decimal import Decimal

    from carryover.domain.plans import PlanError, PlanPrice, plan_from_mapping

    base = {"id": "p", "allowance": {"data": "1GB"}}
    plan = plan_from_mapping({**base, "price": {"amount": "45.00", "currency": "USD"}})
    assert plan.price == PlanPrice(Decimal("45.00"), "USD")
    assert str(plan.price.amount) == "45.00"  # the decimal as written, never a float
    # Stored plan bodies from before `amount` keep reading as the same plan.
    old = plan_from_mapping({**base, "price": {"per_cycle": "45.00", "currency": "USD"}})
    assert old == plan
    pack = plan_from_mapping({"id": "t", "kind": "pack", "allowance": {"data": "5GB"},
                              "pack": {"validity_days": 30},
                              "price": {"amount": "9.99", "currency": "EUR"}})
    assert pack.price == PlanPrice(Decimal("9.99"), "EUR")
    for bad, field in (({"amount": 45.0, "currency": "USD"}, "price.amount"),
                       ({"amount": "-1", "currency": "USD"}, "price.amount"),
                       ({"amount": "NaN", "currency": "USD"}, "price.amount"),
                       ({"amount": "1", "per_cycle": "1", "currency": "USD"}, "price.per_cycle"),
                       ({"amount": "1", "currency": "US"}, "price.currency"),
                       ({"amount": "1", "currency": "USD", "per": "month"}, "price.per")):
        with pytest.raises(PlanError) as caught:
            plan_from_mapping({**base, "price": bad})
        assert field in [p.field for p in caught.value.problems], bad
