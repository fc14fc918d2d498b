"""Advice (docs/advice.md): forecast, rollover at risk, plan fit by exact replay, family.

Conventions of rules_support: UTC, bill-cycle day 1, GB = 1024**3 bytes. The plan
fit is checked against `carryover simulate` of the same usage on each plan (its
checks give the overage, its timeline the QoS changes), not against a second
computation of the rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carryover.adapters.scenario_file import parse_scenario
from carryover.domain.advice import advise, family, forecast, plan_fit, profile
from carryover.domain.buckets import POOL
from carryover.domain.inputs import OpenLine, SetLimit, TopUp, Usage
from carryover.domain.units import Unit
from carryover.domain.views import position
from carryover.services.scenarios.simulate import run

from .rules_support import GB, MB, PRESETS, at, new_book, plan, submit

TEN = plan("ten", allowance={"data": "10GB"}, overage={"action": "throttle", "kbps": "128kbps"},
           price={"amount": "30.00", "currency": "USD"})
TWENTY = plan("twenty", allowance={"data": "20GB"}, price={"amount": "45.00", "currency": "USD"},
              overage={"action": "throttle", "kbps": "128kbps"})
ROLL = plan("roll", allowance={"data": "8GB"}, overage={"action": "block"},
            rollover={"kinds": ["allowance"], "per_cycle_cap": "2GB", "lifetime": {"cycles": 1}},
            price={"amount": "25.00", "currency": "USD"})
CHARGE = plan("charge", allowance={"data": "5GB"},
              overage={"action": "charge", "price": "0.01", "currency": "USD", "per": "1MB"},
              price={"amount": "10.00", "currency": "USD"})
FREE = plan("free", allowance={"data": "2GB"}, overage={"action": "block"})
OURS = (TEN, TWENTY, ROLL, CHARGE, FREE)
TALK = plan("talk", allowance={"data": "5GB", "voice": "100min"},
            overage={"action": "charge", "price": "0.50", "currency": "USD", "per": "1MB"},
            price={"amount": "20.00", "currency": "USD"})
TALK_MORE = plan("talk-more", allowance={"data": "8GB", "voice": "300min"},
                 overage={"action": "throttle", "kbps": "128kbps"})


def daily(line: str, start: datetime, count: int, amount: int, hour: int = 12) -> list[Usage]:
    return [Usage(f"{line}-{start:%m%d}-{n:03d}", line, start + timedelta(days=n, hours=hour),
                  amount) for n in range(count)]


def book_with(plan_id: str, events: list):
    book = new_book(*OURS)
    submit(book, OpenLine("open", "a", at(1, 1), plan_id), *events)
    return book


# ---------------------------------------------------------------- forecast


def test_one_gb_a_day_from_ten_gb_runs_out_on_day_ten():
    # 1 GB at noon on each of Jan 1..5; at Jan 5 18:00: 4 complete days at 1 GB a day,
    # 6 h of today to come (0.25 GB), 5 GB left -> 0.25 today, 4 on Jan 6..9, the last
    # 0.75 GB on Jan 10, at 18:00.
    book = book_with("ten", daily("a", at(1, 1), 5, GB))
    advice = advise(book, book.applied, "a", at(1, 5, 18))
    f = advice["forecast"]
    assert f["kind"] == "forecast" and f["method"] == "this_cycle_pace"
    runs_out = datetime.fromisoformat(f["runs_out_at"])
    assert runs_out.date() == at(1, 10).date()
    assert runs_out == at(1, 10, 18)
    # 5 GB used + 0.25 GB for the rest of Jan 5 + 26 days (Jan 6..31) at 1 GB; no spread
    # in exactly equal days.
    assert f["projected_use"] == 5 * GB + GB // 4 + 26 * GB
    assert f["low"] <= f["projected_use"] <= f["high"]
    assert f["used"] == 5 * GB and f["high_speed_left"] == 5 * GB


def test_no_forecast_in_the_first_days_without_history():
    book = book_with("ten", daily("a", at(1, 1), 3, GB))
    for t in (at(1, 1, 13), at(1, 2, 23), at(1, 3, 23, 59)):
        f = advise(book, book.applied, "a", t)["forecast"]
        assert f["kind"] == "no_forecast" and "first 3 days" in f["reason"], t
        assert "projected_use" not in f
    assert advise(book, book.applied, "a", at(1, 4))["forecast"]["kind"] == "forecast"


def test_with_history_the_first_days_have_a_forecast_by_weekday():
    # January: 1 GB on weekdays, 3 GB on Saturdays and Sundays.
    events = [Usage(f"j{d:02d}", "a", at(1, d, 12), 3 * GB if at(1, d).weekday() >= 5 else GB)
              for d in range(1, 32)]
    book = book_with("twenty", events)
    f = advise(book, book.applied, "a", at(2, 1))["forecast"]
    assert f["kind"] == "forecast" and f["method"] == "weekday_profile"
    # February 2026: 20 weekdays and 8 weekend days, level 1: 20 + 24 = 44 GB.
    assert abs(f["projected_use"] - 44 * GB) < MB
    assert f["low"] <= f["projected_use"] <= f["high"]
    # Each weekday used the same every week: the profile has no spread to give.
    assert f["low"] == f["projected_use"] == f["high"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 3 * GB), min_size=4, max_size=40), st.integers(0, 23))
def test_the_interval_contains_the_point(amounts, hour):
    events = [Usage(f"e{n:03d}", "a", at(1, 1) + timedelta(hours=17 * n), amount)
              for n, amount in enumerate(amounts)]
    book = book_with("ten", events)
    t = max(e.at for e in events) + timedelta(hours=hour)
    f = advise(book, book.applied, "a", t)["forecast"]
    if f["kind"] == "forecast":
        assert f["used"] <= f["low"] <= f["projected_use"] <= f["high"]


# ---------------------------------------------------------------- rollover at risk


def test_rollover_at_risk_and_caps_follow_the_fold():
    # roll: 8 GB, per-cycle cap 2 GB, next cycle only. January uses 3 GB: 5 GB left,
    # 2 GB carried. February at 0.1 GB a day (history pace ~0.097 GB a day over 31 days,
    # level from Feb's complete days): the 2 GB deposit drains last (rollover after
    # allowance), so nearly all of it expires at Mar 1, and Feb's allowance ends with
    # more than 2 GB left: the cap holds back the rest.
    jan = daily("a", at(1, 1), 30, GB // 10)
    feb = daily("a", at(2, 1), 5, GB // 10)
    book = book_with("roll", jan + feb)
    advice = advise(book, book.applied, "a", at(2, 6))
    [deposit] = advice["rollover"]["deposits"]
    assert deposit["remaining"] == 2 * GB
    assert deposit["expires_at"] == at(3, 1).isoformat()
    assert deposit["projected_unused_at_expiry"] == 2 * GB
    lost = advice["rollover"]["lost_to_caps_next"]
    projected = advice["forecast"]["projected_use"]
    assert lost["amount"] == 8 * GB - projected - 2 * GB


def test_a_member_sees_the_pools_deposits_projected_with_every_members_pace():
    # AT&T Mobile Share 15 GB: January's members use 5 GB and 2 GB: 8 GB roll into the
    # pool (at most the allowance), valid to the end of February. In February both use
    # 0.2 GB a day: the pace of both is far below the 15 GB allowance, which drains
    # before rollover, so all 8 GB are projected to expire unused.
    book = new_book()
    submit(book, OpenLine("pool", POOL, at(1, 1), "att-mobile-share-15gb"),
           OpenLine("o1", "f1", at(1, 1), None, member=True),
           OpenLine("o2", "f2", at(1, 1), None, member=True),
           *sorted(daily("f1", at(1, 1), 20, GB // 4) + daily("f2", at(1, 1), 8, GB // 4)
                   + daily("f1", at(2, 1), 5, GB // 5, hour=10)
                   + daily("f2", at(2, 1), 5, GB // 5, hour=11), key=lambda u: (u.at, u.id)))
    advice = advise(book, book.applied, "f1", at(2, 6))
    [deposit] = advice["rollover"]["deposits"]
    assert deposit["bucket"].startswith("pool/") and deposit["remaining"] == 8 * GB
    assert deposit["expires_at"] == at(3, 1).isoformat()
    assert deposit["projected_unused_at_expiry"] == 8 * GB
    # The pool's next boundary: February is projected to leave less than the 15 GB cap
    # (AT&T: at most the allowance), so nothing is lost to it.
    assert advice["rollover"]["lost_to_caps_next"]["amount"] == 0


# ---------------------------------------------------------------- plan fit


def _scenario(plan_id: str, events: list[Usage], start: datetime, end: datetime) -> str:
    rows = "\n".join(f"  - {{at: {e.at.isoformat()}, line: a, usage: {e.amount}B}}"
                      if e.unit.value == "data" else
                      f"  - {{at: {e.at.isoformat()}, line: a, usage: {e.amount}s, unit: voice}}"
                      for e in events)
    checks = []
    t = start
    while t < end:
        nxt = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=t.tzinfo)
        checks.append(f"  - {{at: {(nxt - timedelta(microseconds=1)).isoformat()}, "
                      f"line: a, check: true}}")
        t = nxt
    checks.append(f"  - {{at: {end.isoformat()}, line: a, check: true}}")
    return (f"timezone: UTC\nbill_cycle_day: 1\nstart: {start.isoformat()}\n"
            f"lines:\n  a: {{plan: {plan_id}}}\nevents:\n{rows}\n" + "\n".join(checks) + "\n")


def _simulated(plan_id: str, events: list[Usage], start: datetime, end: datetime) -> dict:
    """Overage and seconds per QoS state of `carryover simulate` of the same usage."""
    plans = {**PRESETS, **{p.id: p for p in (*OURS, TALK, TALK_MORE)}}
    result = run(parse_scenario(_scenario(plan_id, events, start, end), "fit.yaml", plans))
    assert not result.problems, result.problems
    overage = sum(c["cycle"]["overage"]["data"] for c in result.checks[:-1])
    voice = sum(c["cycle"]["overage"].get("voice", 0) for c in result.checks[:-1])
    spent: dict[str, timedelta] = {}
    state, since = "normal", start
    for row in result.timeline:
        if row.what == "qos" and row.at < end:
            spent[state] = spent.get(state, timedelta()) + row.at - since
            state, since = row.detail.split(" -> ")[1].split(" ")[0], row.at
    spent[state] = spent.get(state, timedelta()) + end - since
    return {"overage": overage, "voice": voice,
            **{k: v // timedelta(seconds=1) for k, v in spent.items() if k != "normal"}}


def _heavy_usage() -> list[Usage]:
    # Jan..Mar: bursts of 700 MB every 9 hours with heavier weekends, plus April's first days.
    out = []
    t = at(1, 1, 3)
    n = 0
    while t < at(4, 3):
        amount = 700 * MB + (400 * MB if t.weekday() >= 5 else 0) + (n % 7) * 13 * MB
        out.append(Usage(f"u{n:05d}", "a", t, amount))
        t += timedelta(hours=9, minutes=n % 5)
        n += 1
    return out


def test_plan_fit_equals_simulate_on_every_plan():
    events = _heavy_usage()
    book = book_with("ten", events)
    advice = advise(book, book.applied, "a", at(4, 3), cycles=3)
    items = {i["plan"]: i for i in advice["plans"]}
    assert set(items) == {p.id for p in OURS} | {
        pid for pid, p in book.plans.items() if set(p.allowances) == {"data"}
        and p.kind.value != "pack"}
    assert [i["current"] for i in advice["plans"]].count(True) == 1 and items["ten"]["current"]
    window = [e for e in events if at(1, 1) <= e.at < at(4, 1)]
    for pid in ("ten", "twenty", "roll", "charge", "free", "tmobile-go5g"):
        sim = _simulated(pid, window, at(1, 1), at(4, 1))
        got = items[pid]
        assert got["overage"] == sim["overage"], pid
        assert got["seconds_throttled"] == sim.get("throttled", 0), pid
        assert got["seconds_blocked"] == sim.get("blocked", 0), pid
        assert got["seconds_deprioritized"] == sim.get("deprioritized", 0), pid
    assert items["ten"]["overage"] > 0 and items["ten"]["seconds_throttled"] > 0
    assert items["free"]["seconds_blocked"] > 0
    # 3 cycles at 10.00 plus the charged overage, in whole started megabytes per cycle.
    assert items["charge"]["overage_charged"] is not None
    assert Decimal(items["charge"]["price_total"]) == (
        Decimal("30.00") + Decimal(items["charge"]["overage_charged"]))
    assert items["ten"]["price_total"] == "90.00"
    assert items["free"]["price_total"] is None


def test_switch_now_or_next_cycle_and_what_a_change_now_forfeits():
    # ROLL forfeits nothing but the allowance; AT&T forfeits rollover on any change.
    events = daily("a", at(1, 1), 31, GB // 8) + daily("a", at(2, 1), 3, GB // 8)
    book = book_with("roll", events)
    items = {i["plan"]: i for i in advise(book, book.applied, "a", at(2, 4))["plans"]}
    # At Feb 4 on roll: 8 GB - 3/8 GB of allowance left, 2 GB of rollover (capped).
    left = 8 * GB - 3 * GB // 8
    assert items["twenty"]["forfeits_now"] == left
    # twenty prorated for 24 of 28 days is 20*24/28 = 17.1 GB > what is forfeited: now.
    assert items["twenty"]["switch"] == "now"
    # free: 2 GB prorated is less than the forfeited allowance: wait.
    assert items["free"]["switch"] == "next_cycle"
    assert items["roll"]["switch"] is None and items["roll"]["forfeits_now"] is None


plan_strategy = st.builds(
    lambda n, size, action, price: plan(
        f"p{n}", allowance={"data": f"{size}GB"},
        overage={"action": action, **({"kbps": "128kbps"} if action == "throttle" else {})},
        **({"price": {"amount": f"{price}.00", "currency": "USD"}} if price else {})),
    st.integers(0, 99), st.integers(1, 30), st.sampled_from(["block", "throttle"]),
    st.integers(0, 60))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plan_strategy, min_size=1, max_size=4, unique_by=lambda p: p.id),
       st.lists(st.integers(0, 2 * GB), min_size=1, max_size=60))
def test_the_first_plan_is_never_worse_than_the_current_one(plans, amounts):
    book = new_book(*plans)
    current = plans[0].id
    events = [Usage(f"e{n:03d}", "a", at(1, 1) + timedelta(hours=29 * n), a)
              for n, a in enumerate(amounts)]
    submit(book, OpenLine("open", "a", at(1, 1), current),
           *[e for e in events if e.at < at(4, 1)])
    items = advise(book, book.applied, "a", at(3, 1), cycles=2)["plans"]
    [mine] = [i for i in items if i["current"]]
    assert plan_fit.rank_key(items[0]) <= plan_fit.rank_key(mine)
    best, ours = items[0], mine
    assert (best["seconds_throttled"] + best["seconds_blocked"]
            <= ours["seconds_throttled"] + ours["seconds_blocked"])


def test_advice_is_deterministic_and_changes_the_book_only_as_a_read_does():
    events = _heavy_usage()
    book, read = book_with("ten", events), book_with("ten", events)
    one = advise(book, book.applied, "a", at(4, 3))
    assert one == advise(book, book.applied, "a", at(4, 3))
    position(read, at(4, 3))  # a balance read at the same instant moves the book as far
    assert (book.entries, dict(book.counters), book.until) == (
        read.entries, dict(read.counters), read.until)


# ---------------------------------------------------------------- family


POOLED = plan("pooled", allowance={"data": "10GB"}, overage={"action": "block"})
SOLO = plan("solo", allowance={"data": "1GB"}, overage={"action": "block"},
            rollover={"kinds": ["allowance", "topup"], "lifetime": {"cycles": 1}})


def _family(usage: dict[str, list[int]], topups: dict[str, int], limits: dict[str, int]):
    book = new_book(POOLED, SOLO)
    items = [OpenLine("pool", POOL, at(1, 1), "pooled")]
    for m in sorted(usage):
        items.append(OpenLine(f"open-{m}", m, at(1, 1), None, member=True))
    for m, amount in sorted(topups.items()):
        items.append(TopUp(f"top-{m}", m, at(1, 2), amount))
    for m, amount in sorted(limits.items()):
        items.append(SetLimit(f"lim-{m}", m, at(1, 2), amount))
    for m, amounts in sorted(usage.items()):
        items += [Usage(f"{m}-{n:02d}", m, at(1, 3) + timedelta(hours=7 * n + ord(m[-1])), a)
                  for n, a in enumerate(amounts)]
    items.sort(key=book.key)
    for item in items:
        book.submit(item)
    return book


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["m1", "m2", "m3"]),
                       st.lists(st.integers(0, GB), min_size=0, max_size=12), min_size=2),
       st.dictionaries(st.sampled_from(["m1", "m2", "m3"]), st.integers(1, 3 * GB)),
       st.dictionaries(st.sampled_from(["m1", "m2", "m3"]), st.integers(0, 4 * GB)))
def test_family_suggestions_never_increase_a_shortfall_and_conserve_bytes(usage, topups, limits):
    topups = {k: v for k, v in topups.items() if k in usage}
    limits = {k: v for k, v in limits.items() if k in usage}
    book = _family(usage, topups, limits)
    t = at(1, 8)
    advice = advise(book, book.applied, sorted(usage)[0], t)
    fam = advice["family"]
    assert [m["line"] for m in fam["members"]] == sorted(usage)
    state = position(book, t)
    paces = {}
    for m in family.members(state):
        found = forecast.pace(state.calendar, profile.line_usage(book.applied, m, state.calendar),
                              t, [])
        paces[m] = None if isinstance(found, str) else found
    base = family.project(state, t, paces, [])
    applied = family.as_inputs(fam["suggestions"], t)
    after = family.project(state, t, paces, applied)
    assert all(after.shortfall[m] <= base.shortfall[m] for m in base.shortfall)
    assert {m["line"]: m["projected_shortfall"] for m in fam["members"]} == base.shortfall
    # Conservation: the suggestions move bytes, never create or destroy any.
    what_if = family.fork(state)
    held = sum(b.remaining or 0 for b in what_if.buckets.live() if not b.unlimited)
    for item in applied:
        outcome = what_if.submit(family.moved(item, family.instant(what_if, t)))
        assert outcome.status == "accepted", outcome
    assert sum(b.remaining or 0 for b in what_if.buckets.live() if not b.unlimited) == held
    outs = sum(e.amount for e in what_if.entries if e.kind.value == "transfer_out")
    ins = sum(e.amount for e in what_if.entries if e.kind.value == "transfer_in")
    assert outs == ins == sum(s["amount"] for s in fam["suggestions"] if s["kind"] == "gift")


def test_a_gift_is_suggested_from_a_top_up_that_would_expire_to_a_member_short_of_data():
    # The pool holds 10 GB; m1 is capped at 1 GB from it and uses 2 GB a week; m2 has a
    # 3 GB top-up valid to the cycle's end and uses nothing.
    book = _family({"m1": [GB // 4] * 12, "m2": [0]}, {"m2": 3 * GB}, {"m1": GB})
    fam = advise(book, book.applied, "m1", at(1, 8))["family"]
    short = {m["line"]: m for m in fam["members"]}
    assert short["m1"]["projected_shortfall"] > 0
    assert short["m2"]["projected_surplus"] == 3 * GB
    gifts = [s for s in fam["suggestions"] if s["kind"] == "gift"]
    assert gifts and gifts[0]["from"] == "m2" and gifts[0]["to"] == "m1"
    assert fam["shortfall_after"] < short["m1"]["projected_shortfall"]


def test_plan_fit_replays_voice_too_and_charges_it_as_a_statement_does():
    from carryover.domain.statement import overage_charge

    calls = [Usage(f"v{n:03d}", "a", at(1, 1, 8) + timedelta(hours=13 * n), 1000 + 37 * n,
                   Unit.VOICE) for n in range(150)]
    events = sorted(_heavy_usage()[:300] + calls, key=lambda e: (e.at, e.id))
    book = new_book(TALK, TALK_MORE)
    submit(book, OpenLine("open", "a", at(1, 1), "talk"), *[e for e in events if e.at < at(3, 2)])
    items = {i["plan"]: i for i in advise(book, book.applied, "a", at(3, 2), cycles=2)["plans"]}
    assert set(items) == {"talk", "talk-more"}  # the same unit kinds: data and voice
    window = [e for e in events if at(1, 1) <= e.at < at(3, 1)]
    for pid in items:
        sim = _simulated(pid, window, at(1, 1), at(3, 1))
        assert items[pid]["overage_by_unit"].get("voice", 0) == sim["voice"], pid
        assert items[pid]["overage"] == sim["overage"], pid
        assert items[pid]["seconds_throttled"] == sim.get("throttled", 0), pid
    assert items["talk"]["overage_by_unit"]["voice"] > 0
    # Charged per cycle and unit, as the statement charges: whole started increments.
    replayed = new_book(TALK)
    submit(replayed, OpenLine("open", "a", at(1, 1), "talk"), *window)
    want = sum((overage_charge(replayed.counter(start, "a", unit, "overage"), TALK)
                or Decimal(0)) for start in (at(1, 1), at(2, 1)) for unit in Unit)
    assert Decimal(items["talk"]["overage_charged"]) == want > 0
    assert Decimal(items["talk"]["price_total"]) == Decimal("40.00") + want


# ---------------------------------------------------------------- simulate


def test_a_scenario_check_may_ask_for_advice():
    from carryover.adapters.scenario_file import ScenarioError

    events = daily("a", at(1, 1), 31, GB // 4) + daily("a", at(2, 1), 5, GB // 4)
    text = _scenario("ten", events, at(1, 1), at(2, 6)).replace(
        f"  - {{at: {at(2, 6).isoformat()}, line: a, check: true}}",
        f"  - {{at: {at(2, 6).isoformat()}, line: a, check: true, advise: 1}}")
    plans = {**PRESETS, **{p.id: p for p in OURS}}
    result = run(parse_scenario(text, "advise.yaml", plans))
    assert not result.problems
    [checked] = [c for c in result.checks if "advice" in c]
    book = book_with("ten", events)
    assert checked["advice"] == advise(book, book.applied, "a", at(2, 6), 1)
    assert [r.what for r in result.timeline].count("advice") == 2
    assert "advice" not in result.checks[0]
    bad = text.replace("usage: ", "advise: true, usage: ", 1)
    try:
        parse_scenario(bad, "bad.yaml", plans)
    except ScenarioError as exc:
        assert any("advise: only a check gives advice" in line for line in exc.lines), exc.lines
    else:
        raise AssertionError("advise on a usage event was accepted")
