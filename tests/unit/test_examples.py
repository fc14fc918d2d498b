"""The shipped examples/*.yaml, run through the real scenario loader and simulator.

Every expected number is derived by hand from docs/semantics.md, docs/scenarios.md
("Output": the check objects) and the preset's terms, with the arithmetic in a comment;
none is copied from the program's output.

Conventions used in the derivations:
- GB = 1024**3 bytes, MB = 1024**2 bytes (docs/semantics.md, "Units").
- Instants in the check objects are UTC. America/New_York is UTC-5 in winter and
  UTC-4 in summer (DST from 2026-03-08 to 2026-11-01); Asia/Shanghai is UTC+8,
  Asia/Tokyo UTC+9, Europe/London UTC+0 in winter; none of the last three changes
  its clocks within the dates used.
- A cycle starts at local midnight on the bill-cycle day.
- Consumption order: (priority asc, valid_until asc, valid_from asc, own before
  pool, id). A check lists usable buckets with something left, in that order;
  `available` = own + pool capped by the member limit left (docs/scenarios.md,
  "Output").
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from carryover.adapters.scenario_file import load_scenario
from carryover.domain.inputs import Usage
from carryover.domain.ledger import balances, usage_by_line
from carryover.domain.views import position, qos
from carryover.plan_files import load_presets
from carryover.services.scenarios.simulate import run

GB = 1024**3
MB = 1024**2
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NORMAL = ("normal", None)
THROTTLED_128 = ("throttled", 128)


def utc(text: str) -> str:
    """'2026-02-05T05:00' -> the ISO form the check objects use for UTC instants."""
    return f"{text}:00+00:00"


def bucket(kind: str, owner: str, remaining: int | None, valid_from: str, valid_until: str,
           unit: str = "data") -> dict:
    return {"kind": kind, "unit": unit, "owner": owner, "remaining": remaining,
            "valid_from": utc(valid_from), "valid_until": utc(valid_until)}


def per_unit(value: int | dict | None) -> dict:
    return value if isinstance(value, dict) else {"data": value}


def expected(at: str, line: str, available, buckets: list[dict], cycle: tuple[str, str],
             used=0, overage=0, qos_state: tuple[str, int | None] = NORMAL) -> dict:
    return {
        "at": utc(at),
        "line": line,
        "available": per_unit(available),
        "buckets": buckets,
        "qos": {"state": qos_state[0], "max_downlink_kbps": qos_state[1]},
        "cycle": {"start": utc(cycle[0]), "end": utc(cycle[1]),
                  "used": per_unit(used), "overage": per_unit(overage)},
    }


def without_ids(check: dict) -> dict:
    """Bucket ids are derived by the engine; the examples assert everything else."""
    return {**check, "buckets": [{k: v for k, v in b.items() if k != "id"}
                                 for b in check["buckets"]]}


def simulate(name: str):
    scenario = load_scenario(EXAMPLES / name, load_presets())
    result = run(scenario)
    assert result.problems == []
    # docs/semantics.md, "The ledger and conservation": each bucket's remaining is the
    # fold of its ledger entries, and each
    # line's usage events (an event_id counted once) equal its debits plus overage.
    book = result.book
    folded = balances(book.entries)
    assert {k: b.remaining for k, b in book.buckets.items() if not b.unlimited} == {
        k: folded.get(k, 0) for k, b in book.buckets.items() if not b.unlimited}
    reported: dict = defaultdict(int)
    seen: set[str] = set()
    for step in scenario.steps:
        if isinstance(step.item, Usage) and step.item.id not in seen:
            seen.add(step.item.id)
            reported[(step.item.line, step.item.unit)] += step.item.amount
    assert usage_by_line(book.entries) == dict(reported)
    return result


def checks_of(name: str) -> list[dict]:
    return [without_ids(c) for c in simulate(name).checks]


def assert_checks(actual: list[dict], wanted: list[dict]) -> None:
    assert len(actual) == len(wanted)
    for got, want in zip(actual, wanted, strict=True):
        assert got == want, f"check at {want['at']} for {want['line']}"


def test_every_preset_has_an_example():
    used = " ".join(p.read_text(encoding="utf-8") for p in EXAMPLES.glob("*.yaml"))
    assert [p for p in load_presets() if p not in used] == []


# ---- tmobile-data-stash.yaml (through the CLI) ---------------------------------------

def test_tmobile_data_stash_via_cli():
    from carryover.cli import app  # imported here: only this test depends on the CLI

    out = CliRunner().invoke(app, ["simulate", str(EXAMPLES / "tmobile-data-stash.yaml"),
                                   "--json"])
    assert out.exit_code == 0, out.output
    actual = [without_ids(json.loads(line)) for line in out.stdout.splitlines() if line]
    # Cycle day 5: Jan 5 00:00 EST = 05:00Z; Feb 5 00:00 EST = 05:00Z; Mar 5 (before DST)
    # 00:00 EST = 05:00Z; Apr 5 00:00 EDT = 04:00Z.
    feb, mar, apr = "2026-02-05T05:00", "2026-03-05T05:00", "2026-04-05T04:00"
    # Deposit made Feb 5 expires 12 months later: 2027-02-05 00:00 EST = 05:00Z.
    deposit_until = "2027-02-05T05:00"
    assert_checks(actual, [
        # At Feb 5 the late 1 GB (arrives Feb 6) is unknown: 10 GB - 3 GB = 7 GB deposited;
        # available 10 GB allowance + 7 GB stash = 17 GB.
        expected("2026-02-05T05:00", "alice", 17 * GB, [
            bucket("allowance", "alice", 10 * GB, feb, mar),
            bucket("rollover", "alice", 7 * GB, feb, deposit_until),
        ], (feb, mar)),
        # The 1 GB of Jan 31 arrived Feb 6 08:00, within 48 h of Feb 5 00:00: rated in
        # January, so the deposit is 10 - 3 - 1 = 6 GB. Feb 20: 12 GB = 10 GB allowance
        # + 2 GB stash -> stash 6 - 2 = 4 GB; allowance empty (not listed).
        expected("2026-02-21T05:00", "alice", 4 * GB, [
            bucket("rollover", "alice", 4 * GB, feb, deposit_until),
        ], (feb, mar), used=12 * GB),
        # Mar 5: February's allowance is 0 -> nothing deposited; 10 GB new + 4 GB stash.
        expected("2026-03-05T05:00", "alice", 14 * GB, [
            bucket("allowance", "alice", 10 * GB, mar, apr),
            bucket("rollover", "alice", 4 * GB, feb, deposit_until),
        ], (mar, apr)),
    ])


# ---- tmobile-data-stash-cap.yaml ------------------------------------------------------

def test_tmobile_data_stash_cap():
    # Cycle day 1 in New York: Feb 1 / Mar 1 00:00 EST = 05:00Z; Apr 1, May 1, Jun 1,
    # Jul 1 00:00 EDT = 04:00Z; 2027-02-01 / 2027-03-01 00:00 EST = 05:00Z.
    feb26, mar26, apr26, may26 = ("2026-02-01T05:00", "2026-03-01T05:00",
                                  "2026-04-01T04:00", "2026-05-01T04:00")
    jun26, jul26 = "2026-06-01T04:00", "2026-07-01T04:00"
    feb27, mar27 = "2027-02-01T05:00", "2027-03-01T05:00"
    # Deposits expire 12 months after they are made (local midnight a year later):
    # Feb-26 -> 2027-02-01 05:00Z, Mar-26 -> 2027-03-01 05:00Z, Jun-26 -> 2027-06-01
    # 00:00 EDT = 04:00Z, Feb-27 -> 2028-02-01 05:00Z.
    jun27, feb28 = "2027-06-01T04:00", "2028-02-01T05:00"
    assert_checks(checks_of("tmobile-data-stash-cap.yaml"), [
        # Feb 1: January's 10 GB untouched -> deposit 10 GB (stash 0 + 10 <= 20).
        # Mar 1: February's 10 GB -> deposit min(10, 20 - 10) = 10 GB; stash 20 GB.
        # Apr 1: March's 10 GB -> min(10, 20 - 20) = 0: nothing deposited.
        # Available: 10 GB allowance + 10 + 10 = 30 GB; deposits oldest first.
        expected("2026-04-01T04:00", "main", 30 * GB, [
            bucket("allowance", "main", 10 * GB, apr26, may26),
            bucket("rollover", "main", 10 * GB, feb26, feb27),
            bucket("rollover", "main", 10 * GB, mar26, mar27),
        ], (apr26, may26)),
        # Apr 10: 12 GB = 10 GB allowance + 2 GB from the Feb deposit -> 8 GB left.
        # May 1: April's allowance is 0 -> nothing. May 10: 3 GB -> May allowance 7 GB.
        # Jun 1: stash holds 8 + 10 = 18 GB -> deposit min(7, 20 - 18) = 2 GB.
        # Available: 10 + 8 + 10 + 2 = 30 GB.
        expected("2026-06-01T04:00", "main", 30 * GB, [
            bucket("allowance", "main", 10 * GB, jun26, jul26),
            bucket("rollover", "main", 8 * GB, feb26, feb27),
            bucket("rollover", "main", 10 * GB, mar26, mar27),
            bucket("rollover", "main", 2 * GB, jun26, jun27),
        ], (jun26, jul26)),
        # Jul 1 2026 .. Jan 1 2027: the stash holds 20 GB, every deposit is 0.
        # 2027-02-01: the Feb-26 deposit (8 GB) expires at this very instant; the stash
        # then holds 10 + 2 = 12 GB, so January's 10 GB deposits min(10, 20 - 12) = 8 GB.
        # Available: 10 + 10 + 2 + 8 = 30 GB.
        expected("2027-02-01T05:00", "main", 30 * GB, [
            bucket("allowance", "main", 10 * GB, feb27, mar27),
            bucket("rollover", "main", 10 * GB, mar26, mar27),
            bucket("rollover", "main", 2 * GB, jun26, jun27),
            bucket("rollover", "main", 8 * GB, feb27, feb28),
        ], (feb27, mar27)),
    ])


# ---- att-mobile-share-15gb-family.yaml -------------------------------------------------

def test_att_mobile_share_15gb_family_pool_limit_and_gift():
    # Cycle day 10, summer: Apr 10 / May 10 / Jun 10 00:00 EDT = 04:00Z.
    apr, may, jun = "2026-04-10T04:00", "2026-05-10T04:00", "2026-06-10T04:00"
    # alice's top-up: Apr 12 09:00 EDT = 13:00Z, 30 days -> May 12 09:00 EDT = 13:00Z.
    topup_from, topup_until = "2026-04-12T13:00", "2026-05-12T13:00"
    # The gift (Apr 13 09:00 EDT = 13:00Z) keeps the top-up's expiry.
    gift_from = "2026-04-13T13:00"
    # Priorities: allowance 10 (pool) < topup 15 = gift 15 < rollover 20.
    assert_checks(checks_of("att-mobile-share-15gb-family.yaml"), [
        # Gift: alice's top-up 3 - 1 = 2 GB, bob's gift 1 GB.
        # bob uses 2.5 GB: pool allowance first (priority 10) but capped by his 2 GB
        # limit -> pool 15 - 2 = 13 GB; then his gift 1 - 0.5 = 0.5 GB.
        # available = own 0.5 GB + min(pool 13 GB, limit left 2 - 2 = 0) = 0.5 GB.
        expected("2026-04-15T16:00", "bob", GB // 2, [
            bucket("allowance", "pool", 13 * GB, apr, may),
            bucket("gift", "bob", GB // 2, gift_from, topup_until),
        ], (apr, may), used=5 * GB // 2),
        # alice uses 5 GB from the pool: 13 - 5 = 8 GB. available = top-up 2 + pool 8.
        expected("2026-04-16T16:00", "alice", 10 * GB, [
            bucket("allowance", "pool", 8 * GB, apr, may),
            bucket("topup", "alice", 2 * GB, topup_from, topup_until),
        ], (apr, may), used=5 * GB),
        # bob uses 1 GB: gift 0.5 GB -> 0; the pool is closed to him (limit reached), so
        # 0.5 GB is overage. alice is untouched: still 2 + 8 = 10 GB at full speed.
        expected("2026-04-20T16:00", "alice", 10 * GB, [
            bucket("allowance", "pool", 8 * GB, apr, may),
            bucket("topup", "alice", 2 * GB, topup_from, topup_until),
        ], (apr, may), used=5 * GB),
        # bob: own 0 + min(8, 0) = 0; past his limit he gets the pool plan's 128 kbps.
        # used 2.5 + 1 = 3.5 GB, overage 0.5 GB.
        expected("2026-04-20T16:00", "bob", 0, [
            bucket("allowance", "pool", 8 * GB, apr, may),
        ], (apr, may), used=7 * GB // 2, overage=GB // 2, qos_state=THROTTLED_128),
        # May 10 boundary: the pool's 8 GB left rolls, min(8, cap = allowance 15) = 8 GB,
        # valid to the end of the next bill period (Jun 10); new pool allowance 15 GB.
        # alice: allowance 15 (10), top-up 2 (15), rollover 8 (20) -> 2 + 15 + 8 = 25 GB.
        expected("2026-05-10T04:00", "alice", 25 * GB, [
            bucket("allowance", "pool", 15 * GB, may, jun),
            bucket("topup", "alice", 2 * GB, topup_from, topup_until),
            bucket("rollover", "pool", 8 * GB, may, jun),
        ], (may, jun)),
        # bob: his limit starts afresh: own 0 + min(15 + 8, 2) = 2 GB.
        expected("2026-05-10T04:00", "bob", 2 * GB, [
            bucket("allowance", "pool", 15 * GB, may, jun),
            bucket("rollover", "pool", 8 * GB, may, jun),
        ], (may, jun)),
        # May 13 00:00 EDT = 04:00Z: the top-up expired May 12 13:00Z -> 15 + 8 = 23 GB.
        expected("2026-05-13T04:00", "alice", 23 * GB, [
            bucket("allowance", "pool", 15 * GB, may, jun),
            bucket("rollover", "pool", 8 * GB, may, jun),
        ], (may, jun)),
    ])


# ---- att-mobile-share-25gb-plan-change.yaml --------------------------------------------

def test_att_mobile_share_25gb_plan_change_forfeits_rollover():
    # Cycle day 1, summer: Jun 1 / Jul 1 / Aug 1 00:00 EDT = 04:00Z.
    jun, jul, aug = "2026-06-01T04:00", "2026-07-01T04:00", "2026-08-01T04:00"
    change = "2026-06-16T04:00"  # Jun 16 00:00 EDT
    assert_checks(checks_of("att-mobile-share-25gb-plan-change.yaml"), [
        # May: 25 - 5 = 20 GB left -> rollover min(20, cap = allowance 25) = 20 GB, valid
        # to the end of June. Plan data (10) before rollover (20): 25 + 20 = 45 GB.
        expected("2026-06-01T04:00", "main", 45 * GB, [
            bucket("allowance", "main", 25 * GB, jun, jul),
            bucket("rollover", "main", 20 * GB, jun, jul),
        ], (jun, jul)),
        # Jun 5: 27 GB = 25 GB plan data + 2 GB rollover -> rollover 18 GB.
        expected("2026-06-05T16:00", "main", 18 * GB, [
            bucket("rollover", "main", 18 * GB, jun, jul),
        ], (jun, jul), used=27 * GB),
        # Jun 16 00:00, change to the 15 GB plan, effective now: the old allowance (0 left)
        # closes and the 18 GB rollover is forfeited (AT&T: any plan change). New
        # allowance prorated: June has 30 days, 15 remain -> 15 GB * 15/30 = 7.5 GB.
        # The cycle's usage stays 27 GB.
        expected("2026-06-16T04:00", "main", 15 * GB // 2, [
            bucket("allowance", "main", 15 * GB // 2, change, jul),
        ], (jun, jul), used=27 * GB),
        # Jun 20: 1.5 GB -> 7.5 - 1.5 = 6 GB; June used 27 + 1.5 = 28.5 GB.
        expected("2026-06-20T16:00", "main", 6 * GB, [
            bucket("allowance", "main", 6 * GB, change, jul),
        ], (jun, jul), used=57 * GB // 2),
        # Jul 1: 6 GB rolls (min(6, 15 GB allowance) = 6); new allowance 15 -> 21 GB.
        expected("2026-07-01T04:00", "main", 21 * GB, [
            bucket("allowance", "main", 15 * GB, jul, aug),
            bucket("rollover", "main", 6 * GB, jul, aug),
        ], (jul, aug)),
    ])


# ---- verizon-carryover-8gb.yaml --------------------------------------------------------

def test_verizon_carryover_pool_order_and_safety_mode():
    # Cycle day 1, summer: Jun 1 / Jul 1 / Aug 1 / Sep 1 00:00 EDT = 04:00Z.
    jul, aug, sep = "2026-07-01T04:00", "2026-08-01T04:00", "2026-09-01T04:00"
    # bob's top-up Jul 2 09:00 EDT = 13:00Z, 10 days -> Jul 12 13:00Z.
    bob_topup = ("2026-07-02T13:00", "2026-07-12T13:00")
    # alice's top-up Jul 2 10:00 EDT = 14:00Z, 20 days -> Jul 22 14:00Z.
    alice_topup = ("2026-07-02T14:00", "2026-07-22T14:00")
    # The gift from bob's top-up, Jul 3 09:00 EDT = 13:00Z, keeps its expiry Jul 12 13:00Z.
    gift = ("2026-07-03T13:00", "2026-07-12T13:00")
    # Priorities: allowance 20 < carryover 30 < top-up 40 < gift 50.
    assert_checks(checks_of("verizon-carryover-8gb.yaml"), [
        # June: 8 - 3 = 5 GB carried over to the end of July; new allowance 8 GB.
        expected("2026-07-01T04:00", "alice", 13 * GB, [
            bucket("allowance", "pool", 8 * GB, jul, aug),
            bucket("rollover", "pool", 5 * GB, jul, aug),
        ], (jul, aug)),
        # bob: top-up 2 - 1 gifted = 1 GB. alice: 8 + 5 + 1 + 1 = 15 GB; her top-up comes
        # before her gift although the gift expires first (priority 40 < 50).
        expected("2026-07-03T16:00", "alice", 15 * GB, [
            bucket("allowance", "pool", 8 * GB, jul, aug),
            bucket("rollover", "pool", 5 * GB, jul, aug),
            bucket("topup", "alice", GB, *alice_topup),
            bucket("gift", "alice", GB, *gift),
        ], (jul, aug)),
        # bob: 8 + 5 + 1 = 14 GB.
        expected("2026-07-03T16:00", "bob", 14 * GB, [
            bucket("allowance", "pool", 8 * GB, jul, aug),
            bucket("rollover", "pool", 5 * GB, jul, aug),
            bucket("topup", "bob", GB, *bob_topup),
        ], (jul, aug)),
        # alice 9.5 GB: allowance 8 -> 0, carryover 1.5 -> 5 - 1.5 = 3.5 GB.
        # alice: 3.5 + 1 + 1 = 5.5 GB.
        expected("2026-07-05T16:00", "alice", 11 * GB // 2, [
            bucket("rollover", "pool", 7 * GB // 2, jul, aug),
            bucket("topup", "alice", GB, *alice_topup),
            bucket("gift", "alice", GB, *gift),
        ], (jul, aug), used=19 * GB // 2),
        # bob: 3.5 + 1 = 4.5 GB.
        expected("2026-07-05T16:00", "bob", 9 * GB // 2, [
            bucket("rollover", "pool", 7 * GB // 2, jul, aug),
            bucket("topup", "bob", GB, *bob_topup),
        ], (jul, aug)),
        # alice 4.5 GB: carryover 3.5 -> 0, then her top-up 1 -> 0; the gift is left.
        # used 9.5 + 4.5 = 14 GB.
        expected("2026-07-06T16:00", "alice", GB, [
            bucket("gift", "alice", GB, *gift),
        ], (jul, aug), used=14 * GB),
        # alice 1.5 GB: gift 1 -> 0, 0.5 GB overage; Safety Mode 128 kbps.
        # used 14 + 1.5 = 15.5 GB.
        expected("2026-07-07T16:00", "alice", 0, [], (jul, aug), used=31 * GB // 2,
                 overage=GB // 2, qos_state=THROTTLED_128),
        # bob still has his own 1 GB top-up: normal speed.
        expected("2026-07-07T16:00", "bob", GB, [
            bucket("topup", "bob", GB, *bob_topup),
        ], (jul, aug)),
        # Aug 1: July's allowance has 0 left -> nothing carried; new 8 GB.
        expected("2026-08-01T04:00", "alice", 8 * GB, [
            bucket("allowance", "pool", 8 * GB, aug, sep),
        ], (aug, sep)),
    ])


# ---- china-mobile-jiezhuan-20gb.yaml ---------------------------------------------------

def test_china_mobile_carryover_first_topups_do_not_roll_overage_charged():
    # Cycle day 1 in Asia/Shanghai (UTC+8): local midnight = 16:00Z the day before.
    jan, feb = "2025-12-31T16:00", "2026-01-31T16:00"
    mar, apr = "2026-02-28T16:00", "2026-03-31T16:00"
    # Priorities: rollover 10 < allowance 20 < top-up 30.
    assert_checks(checks_of("china-mobile-jiezhuan-20gb.yaml"), [
        # Jan 10: 5 GB -> allowance 15 GB. Jan 15 10:00 (02:00Z) top-up 1 GB to the end of
        # the cycle. Jan 20: 0.5 GB from the allowance (20 < 30) -> 14.5 GB.
        # available 14.5 + 1 = 15.5 GB; used 5.5 GB.
        expected("2026-01-20T04:00", "main", 31 * GB // 2, [
            bucket("allowance", "main", 29 * GB // 2, jan, feb),
            bucket("topup", "main", GB, "2026-01-15T02:00", feb),
        ], (jan, feb), used=11 * GB // 2),
        # Feb 1: 14.5 GB of in-plan data carried to the end of February; the 1 GB top-up
        # does not roll. Carried data first: 14.5 + 20 = 34.5 GB.
        expected(feb, "main", 69 * GB // 2, [
            bucket("rollover", "main", 29 * GB // 2, feb, mar),
            bucket("allowance", "main", 20 * GB, feb, mar),
        ], (feb, mar)),
        # Feb 10: 10 GB from the carried data -> 4.5 GB; allowance untouched.
        expected("2026-02-10T04:00", "main", 49 * GB // 2, [
            bucket("rollover", "main", 9 * GB // 2, feb, mar),
            bucket("allowance", "main", 20 * GB, feb, mar),
        ], (feb, mar), used=10 * GB),
        # Mar 1: February's 20 GB allowance carries; January's 4.5 GB carry-over does not
        # carry again (next month only). 20 + 20 = 40 GB.
        expected(mar, "main", 40 * GB, [
            bucket("rollover", "main", 20 * GB, mar, apr),
            bucket("allowance", "main", 20 * GB, mar, apr),
        ], (mar, apr)),
        # Mar 20: 45 GB = 20 carried + 20 allowance + 2 top-up, 3 GB charged (normal speed).
        expected("2026-03-20T04:00", "main", 0, [], (mar, apr), used=45 * GB,
                 overage=3 * GB),
    ])


# ---- tmobile-go5g.yaml -----------------------------------------------------------------

def test_tmobile_go5g_premium_and_hotspot():
    result = simulate("tmobile-go5g.yaml")
    # Cycle day 1: Sep 1 / Oct 1 / Nov 1 00:00 EDT = 04:00Z.
    sep, oct_, nov = "2026-09-01T04:00", "2026-10-01T04:00", "2026-11-01T04:00"
    unlimited_sep = [bucket("allowance", "main", None, sep, oct_)]
    assert_checks([without_ids(c) for c in result.checks], [
        # Unlimited: available null; 30 GB hotspot.
        expected("2026-09-05T16:00", "main", None, unlimited_sep, (sep, oct_), used=30 * GB),
        # 30 + 21 = 51 GB (all hotspot) < 100 GB premium: the line itself is normal.
        expected("2026-09-10T16:00", "main", None, unlimited_sep, (sep, oct_), used=51 * GB),
        # 51 + 48.5 = 99.5 GB < 100 GB: normal.
        expected("2026-09-20T16:00", "main", None, unlimited_sep, (sep, oct_),
                 used=199 * GB // 2),
        # 99.5 + 1 = 100.5 GB > 100 GB: deprioritized, no speed cap.
        expected("2026-09-25T16:00", "main", None, unlimited_sep, (sep, oct_),
                 used=201 * GB // 2, qos_state=("deprioritized", None)),
        # New cycle: counters reset.
        expected("2026-10-01T04:00", "main", None,
                 [bucket("allowance", "main", None, oct_, nov)], (oct_, nov)),
    ])

    book = result.book

    def hotspot(at: str):
        t = datetime.fromisoformat(utc(at))
        decision = qos(position(book, t), "main", t, rating_group="hotspot")
        return decision.state, decision.max_downlink_kbps

    # 30 GB hotspot < 50 GB: normal.
    assert hotspot("2026-09-05T16:00") == NORMAL
    # 51 GB hotspot > 50 GB: hotspot traffic throttled to 600 kbps.
    assert hotspot("2026-09-10T16:00") == ("throttled", 600)
    # Still 51 GB hotspot at 99.5 GB in all: hotspot throttled.
    assert hotspot("2026-09-20T16:00") == ("throttled", 600)
    # New cycle: hotspot 0 GB -> normal.
    assert hotspot("2026-10-01T04:00") == NORMAL


# ---- travel-5gb-30d.yaml ---------------------------------------------------------------

def test_travel_pack_stacked_topups_expiring_first_used_first():
    # Asia/Tokyo is UTC+9. Start May 10 09:00 JST = 00:00Z; the pack is valid 30 days:
    # Jun 9 09:00 JST = 00:00Z. Cycle day 1: local midnight = 15:00Z the day before.
    pack = ("2026-05-10T00:00", "2026-06-09T00:00")
    may, jun, jul = "2026-04-30T15:00", "2026-05-31T15:00", "2026-06-30T15:00"
    # Top-up 1: May 20 10:00 JST = 01:00Z + 7 days -> May 27 01:00Z.
    # Top-up 2: May 21 10:00 JST = 01:00Z + 30 days -> Jun 20 01:00Z.
    first = ("2026-05-20T01:00", "2026-05-27T01:00")
    second = ("2026-05-21T01:00", "2026-06-20T01:00")
    # One priority for all: whichever expires first is used first.
    assert_checks(checks_of("travel-5gb-30d.yaml"), [
        # May 12: 3 GB from the pack -> 2 GB. available 1 + 2 + 3 = 6 GB.
        expected("2026-05-21T03:00", "main", 6 * GB, [
            bucket("topup", "main", GB, *first),
            bucket("allowance", "main", 2 * GB, *pack),
            bucket("topup", "main", 3 * GB, *second),
        ], (may, jun), used=3 * GB),
        # May 22: 1.5 GB = 1 GB top-up 1 (expires first) + 0.5 GB pack -> 1.5 GB pack.
        # available 1.5 + 3 = 4.5 GB; used 3 + 1.5 = 4.5 GB.
        expected("2026-05-22T03:00", "main", 9 * GB // 2, [
            bucket("allowance", "main", 3 * GB // 2, *pack),
            bucket("topup", "main", 3 * GB, *second),
        ], (may, jun), used=9 * GB // 2),
        # Jun 10 09:00 JST = 00:00Z: the pack ended Jun 9 with 1.5 GB unused (lost).
        expected("2026-06-10T00:00", "main", 3 * GB, [
            bucket("topup", "main", 3 * GB, *second),
        ], (jun, jul)),
        # Jun 12: 4 GB = 3 GB top-up 2 + 1 GB overage; nothing left: blocked.
        expected("2026-06-12T03:00", "main", 0, [], (jun, jul), used=4 * GB,
                 overage=GB, qos_state=("blocked", 0)),
    ])


# ---- inline-plan-voice-sms.yaml --------------------------------------------------------

def test_inline_plan_voice_and_sms():
    # Europe/London in winter is UTC+0: Jan 1 / Feb 1 / Mar 1 00:00 = 00:00Z.
    jan, feb, mar = "2026-01-01T00:00", "2026-02-01T00:00", "2026-03-01T00:00"
    # Allowance: data 1 GB, voice 100 min = 6000 s, 50 SMS.
    # January: voice 90 s + 20 min (1200 s) = 1290 s -> 6000 - 1290 = 4710 s;
    # SMS 3 -> 47; data 500 MB = 524,288,000 B -> 1,073,741,824 - 524,288,000 = 549,453,824 B.
    data_left = GB - 500 * MB
    assert data_left == 549_453_824
    used_jan = {"data": 500 * MB, "voice": 1290, "sms": 3}
    assert_checks(checks_of("inline-plan-voice-sms.yaml"), [
        expected("2026-01-10T12:00", "main", {"data": data_left, "voice": 4710, "sms": 47}, [
            bucket("allowance", "main", data_left, jan, feb),
            bucket("allowance", "main", 4710, jan, feb, unit="voice"),
            bucket("allowance", "main", 47, jan, feb, unit="sms"),
        ], (jan, feb), used=used_jan, overage={"data": 0, "voice": 0, "sms": 0}),
        # Jan 20: 48 SMS, 47 left -> 0 left, 1 SMS overage; used 3 + 48 = 51 SMS. Data is
        # untouched, so the line's (data) QoS stays normal.
        expected("2026-01-20T12:00", "main", {"data": data_left, "voice": 4710, "sms": 0}, [
            bucket("allowance", "main", data_left, jan, feb),
            bucket("allowance", "main", 4710, jan, feb, unit="voice"),
        ], (jan, feb), used={**used_jan, "sms": 51}, overage={"data": 0, "voice": 0, "sms": 1}),
        # Feb 1: every unit's unused allowance rolls for one cycle (rollover priority 10
        # before allowance 20): data 549,453,824 B; voice 4710 s; SMS 0 -> nothing.
        # available: data GB + 549,453,824 = 1,623,195,648; voice 6000 + 4710 = 10710; SMS 50.
        expected("2026-02-01T00:00", "main",
                 {"data": GB + data_left, "voice": 10710, "sms": 50}, [
                     bucket("rollover", "main", data_left, feb, mar),
                     bucket("allowance", "main", GB, feb, mar),
                     bucket("rollover", "main", 4710, feb, mar, unit="voice"),
                     bucket("allowance", "main", 6000, feb, mar, unit="voice"),
                     bucket("allowance", "main", 50, feb, mar, unit="sms"),
                 ], (feb, mar), used={"data": 0, "voice": 0, "sms": 0},
                 overage={"data": 0, "voice": 0, "sms": 0}),
        # Feb 3: 5000 s = 4710 s rolled over + 290 s allowance -> 6000 - 290 = 5710 s.
        expected("2026-02-03T12:00", "main",
                 {"data": GB + data_left, "voice": 5710, "sms": 50}, [
                     bucket("rollover", "main", data_left, feb, mar),
                     bucket("allowance", "main", GB, feb, mar),
                     bucket("allowance", "main", 5710, feb, mar, unit="voice"),
                     bucket("allowance", "main", 50, feb, mar, unit="sms"),
                 ], (feb, mar), used={"data": 0, "voice": 5000, "sms": 0},
                 overage={"data": 0, "voice": 0, "sms": 0}),
    ])


# ---- late-usage-grace-window.yaml ------------------------------------------------------

def test_late_usage_inside_and_outside_grace_window():
    # Winter in New York: Jan 1 / Feb 1 / Mar 1 00:00 EST = 05:00Z; Apr 1 00:00 EDT = 04:00Z.
    jan, feb, mar, apr = ("2026-01-01T05:00", "2026-02-01T05:00", "2026-03-01T05:00",
                          "2026-04-01T04:00")
    # The Feb 1 deposit lives 12 months: 2027-02-01 00:00 EST = 05:00Z.
    deposit_until = "2027-02-01T05:00"
    # Top-up Feb 1 06:00 EST = 11:00Z, 30 days -> Mar 3 06:00 EST = 11:00Z.
    topup = ("2026-02-01T11:00", "2026-03-03T11:00")
    # Grace: 48 h after the Feb 1 00:00 boundary = Feb 3 00:00 EST (05:00Z).
    # A arrives Feb 2 23:00 (inside); B arrives Feb 3 01:00 (outside).
    assert_checks(checks_of("late-usage-grace-window.yaml"), [
        # Jan 31 23:30: only the 2 GB of Jan 10 is known: 10 - 2 = 8 GB.
        expected("2026-02-01T04:30", "alice", 8 * GB, [
            bucket("allowance", "alice", 8 * GB, jan, feb),
        ], (jan, feb), used=2 * GB),
        # Feb 1: 8 GB deposited at the boundary instant; 10 + 8 = 18 GB.
        expected("2026-02-01T05:00", "alice", 18 * GB, [
            bucket("allowance", "alice", 10 * GB, feb, mar),
            bucket("rollover", "alice", 8 * GB, feb, deposit_until),
        ], (feb, mar)),
        # Feb 2 12:00: 17.5 GB = 10 GB allowance + 7.5 GB stash -> stash 0.5 GB; top-up
        # (priority 30) untouched. 0.5 + 1 = 1.5 GB.
        expected("2026-02-02T18:00", "alice", 3 * GB // 2, [
            bucket("rollover", "alice", GB // 2, feb, deposit_until),
            bucket("topup", "alice", GB, *topup),
        ], (feb, mar), used=35 * GB // 2),
        # A (1 GB of Jan 31) is rated in January: deposit 10 - 2 - 1 = 7 GB. The 7.5 GB
        # already drawn from it exceeds 7 GB by 0.5 GB, which moves down the order to the
        # top-up: 1 - 0.5 = 0.5 GB. February's usage stays 17.5 GB (A is January's).
        expected("2026-02-03T04:30", "alice", GB // 2, [
            bucket("topup", "alice", GB // 2, *topup),
        ], (feb, mar), used=35 * GB // 2),
        # B (1.5 GB) is rated at its arrival, Feb 3 01:00, in February: top-up 0.5 -> 0,
        # 1 GB overage; throttled to 128 kbps. February used 17.5 + 1.5 = 19 GB.
        expected("2026-02-03T07:00", "alice", 0, [], (feb, mar), used=19 * GB,
                 overage=GB, qos_state=THROTTLED_128),
        # Mar 1: February's allowance is 0 -> nothing deposited; 10 GB, normal again.
        expected("2026-03-01T05:00", "alice", 10 * GB, [
            bucket("allowance", "alice", 10 * GB, mar, apr),
        ], (mar, apr)),
    ])

