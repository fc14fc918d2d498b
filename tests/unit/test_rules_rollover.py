"""Rollover at the boundary instant, one rule per test.

The rule is docs/semantics.md, "Cycles and rollover at the boundary instant".
At boundary T:
carried = min(left, per-cycle cap, stash cap - stash held at T after expiries at T);
the carried bytes become a rollover bucket valid from T exactly; the source books
`rollover_out` and the rest `expire`s. See rules_support for conventions.
"""

from __future__ import annotations

import pytest

from carryover.domain import views
from carryover.domain.inputs import Gift, OpenLine, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.units import Unit

from .rules_support import (
    GB,
    US,
    amounts,
    assert_conserved,
    at,
    available,
    buckets_of,
    entries,
    new_book,
    plan,
    queue,
    state,
    submit,
    used,
)

JAN_ALLOWANCE = "a/data/allowance/2026-01-01T00:00:00Z"
FEB_ALLOWANCE = "a/data/allowance/2026-02-01T00:00:00Z"


def opened(*plans, plan_id: str, day: int = 1, tz: str = "UTC", start=None):
    book = new_book(*plans, day=day, tz=tz)
    submit(book, OpenLine("o", "a", start or at(1, 1), plan_id))
    return book


def test_per_cycle_cap_as_an_amount():
    # 10 GB allowance, 2 GB used in January: 8 GB left at Feb 1; cap 3 GB carries
    # min(8, 3) = 3 GB. The January allowance books rollover_out 3 GB and expire 5 GB.
    p = plan("cap3", allowance={"data": "10GB"}, rollover={"per_cycle_cap": "3GB"})
    book = opened(p, plan_id="cap3")
    submit(book, Usage("u", "a", at(1, 10), 2 * GB))
    assert available(book, "a", at(2, 1)) == 13 * GB  # 10 GB new allowance + 3 GB
    assert amounts(book, EntryKind.ROLLOVER_OUT, JAN_ALLOWANCE) == [3 * GB]
    assert amounts(book, EntryKind.EXPIRE, JAN_ALLOWANCE) == [5 * GB]
    [deposit] = buckets_of(book, "a", "rollover")
    assert (deposit.granted, deposit.valid_from, deposit.valid_until) == (3 * GB, at(2, 1),
                                                                          at(3, 1))
    assert (deposit.priority, deposit.rollable, deposit.origin) == (30, False, JAN_ALLOWANCE)
    assert amounts(book, EntryKind.ROLLOVER_IN, deposit.id) == [3 * GB]
    assert_conserved(book)


def test_per_cycle_cap_allowance_bounds_the_total_carried_at_one_boundary():
    # Allowance and top-ups roll, capped at the allowance (10 GB). At Feb 1 the unused
    # allowance (10 GB, priority 20) carries first and uses the whole cap; the unused 4 GB
    # top-up (ends with the cycle, priority 40) carries 0 and expires. Reading tested: the
    # per-cycle cap is a total per owner and unit at one boundary, not per source bucket.
    capped = plan("capa", allowance={"data": "10GB"},
                  rollover={"kinds": ["allowance", "topup"], "per_cycle_cap": "allowance"})
    uncapped = plan("nocap", allowance={"data": "10GB"},
                    rollover={"kinds": ["allowance", "topup"]})
    seen = {}
    for p in (capped, uncapped):
        book = opened(p, plan_id=p.id)
        submit(book, TopUp("t", "a", at(1, 20), 4 * GB))
        seen[p.id] = (available(book, "a", at(2, 1)),
                      sorted(b.granted for b in buckets_of(book, "a", "rollover")),
                      amounts(book, EntryKind.EXPIRE, "a/data/topup/t"))
        assert_conserved(book)
    # capped: 10 + 10 = 20 GB; uncapped: 10 + 10 + 4 = 24 GB.
    assert seen == {"capa": (20 * GB, [10 * GB], [4 * GB]),
                    "nocap": (24 * GB, [4 * GB, 10 * GB], [])}


def test_stash_cap_limits_what_the_stash_holds():
    # 10 GB allowance, stash cap 15 GB, deposits live 3 cycles, nothing used.
    # Feb 1: stash 0 -> room 15 -> 10 GB deposited (until May 1).
    # Mar 1: stash 10 -> room 5 -> 5 GB deposited, 5 GB of February's allowance expires.
    # Apr 1: stash 15 -> room 0 -> nothing deposited, no rollover entries, 10 GB expire.
    p = plan("stash15", allowance={"data": "10GB"},
             rollover={"stash_cap": "15GB", "lifetime": {"cycles": 3}})
    book = opened(p, plan_id="stash15")
    assert available(book, "a", at(4, 1)) == 25 * GB  # 10 (April) + 10 + 5
    assert [(b.granted, b.valid_from) for b in buckets_of(book, "a", "rollover")] == [
        (10 * GB, at(2, 1)), (5 * GB, at(3, 1))]
    assert [e.amount for e in entries(book, EntryKind.EXPIRE) if e.at == at(3, 1)] == [5 * GB]
    assert [e.amount for e in entries(book, EntryKind.EXPIRE) if e.at == at(4, 1)] == [10 * GB]
    assert not [e for e in entries(book, EntryKind.ROLLOVER_OUT) if e.at == at(4, 1)]
    assert_conserved(book)


def test_stash_cap_counts_what_the_stash_still_holds_not_what_was_deposited():
    # Stash cap 10 GB, deposits live 2 cycles and drain first (rollover priority 10).
    # Feb 1: D1 = 10 GB. February uses 4 GB from D1 -> 6 GB held. Mar 1: room 10 - 6 = 4,
    # so 4 of February's 10 GB carry and 6 expire: 10 (March) + 6 + 4 = 20 GB.
    p = plan("stash10", allowance={"data": "10GB"}, priorities={"rollover": 10},
             rollover={"stash_cap": "10GB", "lifetime": {"cycles": 2}})
    book = opened(p, plan_id="stash10")
    submit(book, Usage("u", "a", at(2, 10), 4 * GB))
    assert available(book, "a", at(3, 1)) == 20 * GB
    assert amounts(book, EntryKind.ROLLOVER_OUT, FEB_ALLOWANCE) == [4 * GB]
    assert amounts(book, EntryKind.EXPIRE, FEB_ALLOWANCE) == [6 * GB]
    assert_conserved(book)


def test_a_deposit_expiring_exactly_at_t_frees_stash_room():
    # Stash cap 10 GB, deposits live 1 cycle. Feb 1: D1 = 10 GB until Mar 1. At Mar 1 D1
    # expires (10 GB) before the stash is measured, so the stash holds 0 and February's
    # 10 GB all carry: 10 + 10 = 20 GB (it would be 10 GB if D1 still counted).
    p = plan("stash-1c", allowance={"data": "10GB"},
             rollover={"stash_cap": "10GB", "lifetime": {"cycles": 1}})
    book = opened(p, plan_id="stash-1c")
    assert available(book, "a", at(3, 1)) == 20 * GB
    d1, d2 = buckets_of(book, "a", "rollover")
    assert amounts(book, EntryKind.EXPIRE, d1.id) == [10 * GB]
    assert (d2.granted, d2.valid_from, d2.valid_until) == (10 * GB, at(3, 1), at(4, 1))
    assert_conserved(book)


def test_lifetime_in_cycles():
    # Lifetime 2 cycles: the Feb 1 deposit is valid until the boundary two cycles on,
    # Apr 1. It is drawable at Apr 1 - 1 us and gone at Apr 1 (10 GB expire).
    p = plan("life2", allowance={"data": "10GB"}, rollover={"lifetime": {"cycles": 2}})
    book = opened(p, plan_id="life2")
    views.position(book, at(3, 15))
    d1 = buckets_of(book, "a", "rollover")[0]
    assert (d1.valid_from, d1.valid_until) == (at(2, 1), at(4, 1))
    assert d1.id in [b.id for b in state(book, at(4, 1) - US).queue("a", d1.unit, at(4, 1) - US)]
    assert d1.id not in [b.id for b in state(book, at(4, 1)).queue("a", d1.unit, at(4, 1))]
    assert amounts(book, EntryKind.EXPIRE, d1.id) == [10 * GB]
    assert entries(book, EntryKind.EXPIRE, d1.id)[0].at == at(4, 1)


def test_lifetime_in_months_clamps_to_the_month_end():
    # Bill-cycle day 31 (UTC): boundaries Dec 31, Jan 31, Feb 28, Mar 31. A deposit made
    # Jan 31 with a 1-month lifetime ends at Jan 31 + 1 month, clamped to Feb 28 00:00
    # (add_calendar_months), which here is also the next boundary.
    p = plan("m1", allowance={"data": "10GB"}, rollover={"lifetime": {"months": 1}})
    book = opened(p, plan_id="m1", day=31, start=at(12, 31, year=2025))
    views.position(book, at(2, 1))
    [deposit] = buckets_of(book, "a", "rollover")
    assert (deposit.valid_from, deposit.valid_until) == (at(1, 31), at(2, 28))


def test_lifetime_in_months_is_not_the_cycle_end():
    # Day 31 again. The Feb 28 deposit with a 1-month lifetime ends Mar 28 00:00 (N months
    # after T), three days before the cycle ends Mar 31; with lifetime 1 cycle it would
    # last until Mar 31. It is drawable at Mar 28 - 1 us and expires (10 GB) at Mar 28.
    months = plan("m1", allowance={"data": "10GB"}, rollover={"lifetime": {"months": 1}})
    cycles = plan("c1", allowance={"data": "10GB"}, rollover={"lifetime": {"cycles": 1}})
    ends = {}
    for p in (months, cycles):
        book = opened(p, plan_id=p.id, day=31, start=at(1, 31))
        views.position(book, at(3, 1))
        ends[p.id] = buckets_of(book, "a", "rollover")[0].valid_until
    assert ends == {"m1": at(3, 28), "c1": at(3, 31)}
    book = opened(months, plan_id="m1", day=31, start=at(1, 31))
    assert available(book, "a", at(3, 28) - US) == 20 * GB  # 10 (March) + 10 deposit
    assert available(book, "a", at(3, 28)) == 10 * GB
    [deposit] = buckets_of(book, "a", "rollover")
    assert [(e.amount, e.at) for e in entries(book, EntryKind.EXPIRE, deposit.id)] == [
        (10 * GB, at(3, 28))]


def test_lifetime_in_months_uses_the_local_calendar():
    # New York, day 1. The deposit made Feb 1 00:00 EST (05:00Z) with 6 months ends
    # Aug 1 00:00 local, which is EDT: 04:00Z (not 05:00Z).
    p = plan("m6", allowance={"data": "10GB"}, rollover={"lifetime": {"months": 6}})
    book = opened(p, plan_id="m6", tz="America/New_York", start=at(1, 1, 5))
    views.position(book, at(2, 2))
    [deposit] = buckets_of(book, "a", "rollover")
    assert (deposit.valid_from, deposit.valid_until) == (at(2, 1, 5), at(8, 1, 4))


@pytest.mark.parametrize(("rolls_again", "expected"), [(True, 30 * GB), (False, 20 * GB)])
def test_rolls_again(rolls_again: bool, expected: int):
    # Nothing used. Feb 1: D1 = 10 GB until Mar 1, rollable only if rollover rolls again.
    # Mar 1: rolls_again -> D1's 10 GB carry too: 10 (March) + 10 (Feb) + 10 (D1) = 30 GB;
    # otherwise D1 expires at Mar 1: 10 + 10 = 20 GB.
    p = plan("again", allowance={"data": "10GB"}, rollover={"rolls_again": rolls_again})
    book = opened(p, plan_id="again")
    views.position(book, at(2, 2))
    [d1] = buckets_of(book, "a", "rollover")
    assert d1.rollable is rolls_again
    assert available(book, "a", at(3, 1)) == expected
    if rolls_again:
        assert amounts(book, EntryKind.ROLLOVER_OUT, d1.id) == [10 * GB]
    else:
        assert amounts(book, EntryKind.EXPIRE, d1.id) == [10 * GB]
    assert_conserved(book)


@pytest.mark.parametrize(("kinds", "carried"), [(["allowance", "topup"], 2 * GB),
                                                (["allowance"], 0)])
def test_topup_ending_at_the_boundary_rolls_only_if_its_kind_is_listed(kinds, carried):
    # The allowance is used up on Jan 5. A 2 GB top-up bought Jan 22 for 10 days ends
    # exactly at Feb 1 00:00. Listed: it carries 2 GB (Feb 1: 10 + 2 = 12 GB); not
    # listed: its 2 GB expire at Feb 1 (10 GB).
    p = plan("tk", allowance={"data": "10GB"}, rollover={"kinds": kinds})
    book = opened(p, plan_id="tk")
    submit(book, Usage("u", "a", at(1, 5), 10 * GB),
           TopUp("t", "a", at(1, 22), 2 * GB, valid_days=10))
    assert available(book, "a", at(2, 1)) == 10 * GB + carried
    assert [b.granted for b in buckets_of(book, "a", "rollover")] == ([carried] if carried else [])
    assert amounts(book, EntryKind.ROLLOVER_OUT, "a/data/topup/t") == ([carried] if carried
                                                                         else [])
    assert amounts(book, EntryKind.EXPIRE, "a/data/topup/t") == ([] if carried else [2 * GB])
    assert_conserved(book)


def test_topup_spanning_the_boundary_is_not_rolled_at_it():
    # Reading tested: a bucket rolls at the boundary where it ends. A 2 GB top-up bought
    # Jan 22 for 15 days (to Feb 6) with topup listed stays a top-up across Feb 1 and
    # expires on Feb 6 like any top-up.
    p = plan("tk", allowance={"data": "10GB"}, rollover={"kinds": ["allowance", "topup"]})
    book = opened(p, plan_id="tk")
    submit(book, Usage("u", "a", at(1, 5), 10 * GB),
           TopUp("t", "a", at(1, 22), 2 * GB, valid_days=15))
    assert queue(book, "a", at(2, 1)) == [("allowance", "a", 10 * GB), ("topup", "a", 2 * GB)]
    assert available(book, "a", at(2, 6)) == 10 * GB
    assert [(e.amount, e.at) for e in entries(book, EntryKind.EXPIRE, "a/data/topup/t")] == [
        (2 * GB, at(2, 6))]


def test_nothing_left_carries_nothing():
    # All 10 GB used in January: no rollover bucket, no rollover or expire entries at all.
    p = plan("roll", allowance={"data": "10GB"}, rollover={})
    book = opened(p, plan_id="roll")
    submit(book, Usage("u", "a", at(1, 10), 10 * GB))
    assert available(book, "a", at(2, 1)) == 10 * GB
    assert buckets_of(book, "a", "rollover") == []
    for kind in (EntryKind.ROLLOVER_OUT, EntryKind.ROLLOVER_IN, EntryKind.EXPIRE):
        assert entries(book, kind) == []


def test_rollover_is_usable_at_the_boundary_instant():
    # Rollover drains first (priority 10). January leaves 10 GB; at Feb 1 00:00 exactly a
    # check lists the deposit and a 1 GB event at that instant is debited from it.
    p = plan("rfirst", allowance={"data": "10GB"}, priorities={"rollover": 10}, rollover={})
    book = opened(p, plan_id="rfirst")
    check = views.check(book, "a", at(2, 1))
    assert [(b["kind"], b["remaining"]) for b in check["buckets"]] == [
        ("rollover", 10 * GB), ("allowance", 10 * GB)]
    assert check["available"]["data"] == 20 * GB
    submit(book, Usage("u", "a", at(2, 1), GB))
    [deposit] = buckets_of(book, "a", "rollover")
    assert amounts(book, EntryKind.DEBIT, deposit.id) == [GB]


@pytest.mark.parametrize(("when", "jan_used", "feb_used", "carried"), [
    (at(2, 1) - US, 3 * GB, 0, 7 * GB),  # last microsecond of January: 10 - 3 carries
    (at(2, 1), 0, 3 * GB, 10 * GB),  # the boundary instant is February's
])
def test_usage_at_t_minus_1us_is_old_cycle_and_at_t_new_cycle(when, jan_used, feb_used,
                                                                carried):
    p = plan("roll", allowance={"data": "10GB"}, rollover={})
    book = opened(p, plan_id="roll")
    submit(book, Usage("u", "a", when, 3 * GB))
    views.position(book, at(2, 2))
    assert (used(book, "a", at(1, 1)), used(book, "a", at(2, 1))) == (jan_used, feb_used)
    assert [b.granted for b in buckets_of(book, "a", "rollover")] == [carried]
    # Feb 2: 10 GB allowance (less 3 GB if the event was February's) + what carried.
    assert available(book, "a", at(2, 2)) == 10 * GB - feb_used + carried
    assert_conserved(book)


def test_gift_ending_at_the_boundary_rolls_if_gift_is_listed():
    # b's plan rolls allowance and gifts. a buys 2 GB on Jan 20 (ends Feb 1) and gifts 1 GB
    # to b on Jan 21: the gift keeps the Feb 1 expiry, so at Feb 1 it is a source like
    # b's allowance: b gets two deposits, 1 GB (allowance) and 1 GB (gift).
    gk = plan("gk", allowance={"data": "1GB"}, rollover={"kinds": ["allowance", "gift"]})
    book = new_book(gk)
    submit(book, OpenLine("oa", "a", at(1, 1), "gk"), OpenLine("ob", "b", at(1, 1), "gk"),
           TopUp("t", "a", at(1, 20), 2 * GB), Gift("g", "a", "b", at(1, 21), GB))
    [gift] = buckets_of(book, "b", "gift")
    assert gift.valid_until == at(2, 1)
    assert available(book, "b", at(2, 1)) == 3 * GB  # 1 (February) + 1 + 1 carried
    assert amounts(book, EntryKind.ROLLOVER_OUT, gift.id) == [GB]


MIXED = {"data": "1GB", "voice": "300min", "sms": 100}


def _deposits(book, t):
    """{unit: carried} of the rollover buckets made at boundary t."""
    state(book, t)
    return {str(b.unit): b.granted for b in buckets_of(book, "a", "rollover") if b.valid_from == t}


def test_issue15_defect4_a_cap_in_bytes_caps_data_only():
    # Issue 15, defect 4: allowance {data 1 GB, voice 300 min, sms 100}, per-cycle cap
    # 100 B, nothing used in January. At Feb 1 data carries min(1 GB, 100 B) = 100 B;
    # voice and SMS have no cap of their own, so all of it carries: 300 min = 18,000 s
    # and 100 messages (the defect capped them at 100 s and 100 messages).
    p = plan("mixed-cap", allowance=MIXED, rollover={"per_cycle_cap": "100B"})
    book = opened(p, plan_id="mixed-cap")
    assert _deposits(book, at(2, 1)) == {"data": 100, "voice": 18_000, "sms": 100}
    # The stash cap likewise: 100 B caps data's stash, not voice or SMS.
    p = plan("mixed-stash", allowance=MIXED, rollover={"stash_cap": "100B"})
    book = opened(p, plan_id="mixed-stash")
    assert _deposits(book, at(2, 1)) == {"data": 100, "voice": 18_000, "sms": 100}
    assert_conserved(book)


def test_a_cap_names_its_unit_by_its_suffix_or_a_mapping():
    # A cap in seconds caps voice only, a bare count SMS only; a mapping caps each unit
    # it names. January unused: 1 GB, 18,000 s and 100 SMS are left at Feb 1.
    cases = [
        ({"per_cycle_cap": "60min"}, {"data": GB, "voice": 3600, "sms": 100}),
        ({"per_cycle_cap": 7}, {"data": GB, "voice": 18_000, "sms": 7}),
        ({"per_cycle_cap": {"data": "2MB", "voice": "60s"}},
         {"data": 2 * 1024**2, "voice": 60, "sms": 100}),
        ({"per_cycle_cap": {"sms": 3}, "stash_cap": {"voice": "2min", "data": "allowance"}},
         {"data": GB, "voice": 120, "sms": 3}),
    ]
    for n, (rollover, expected) in enumerate(cases):
        p = plan(f"mixed-{n}", allowance=MIXED, rollover=rollover)
        book = opened(p, plan_id=p.id)
        assert _deposits(book, at(2, 1)) == expected, rollover
        assert_conserved(book)


def test_allowance_as_a_cap_means_each_units_own_allowance():
    # per_cycle_cap: allowance, with top-ups rolling too: each unit carries at most its
    # own allowance. Data: 1 GB allowance + a 1 GB top-up ending with the cycle -> 1 GB
    # carried; voice: 300 min + a 100 min top-up -> 300 min (18,000 s); SMS 100 + 50 -> 100.
    p = plan("mixed-allow", allowance=MIXED,
             rollover={"kinds": ["allowance", "topup"], "per_cycle_cap": "allowance"})
    book = opened(p, plan_id="mixed-allow")
    submit(book, TopUp("t-data", "a", at(1, 10), GB),
           TopUp("t-voice", "a", at(1, 10), 6000, unit=Unit.VOICE),
           TopUp("t-sms", "a", at(1, 10), 50, unit=Unit.SMS))
    state(book, at(2, 1))
    carried = {}
    for b in buckets_of(book, "a", "rollover"):
        carried[str(b.unit)] = carried.get(str(b.unit), 0) + b.granted
    assert carried == {"data": GB, "voice": 18_000, "sms": 100}
    assert_conserved(book)
