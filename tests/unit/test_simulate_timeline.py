"""The simulate timeline lists every deposit, expiry, correction and QoS change at the
instant it took effect, whatever crosses the boundary first (docs/scenarios.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.adapters.scenario_file import load_scenario
from carryover.plan_files import load_presets
from carryover.services.scenarios.simulate import run

HEAD = """timezone: America/New_York
bill_cycle_day: 5
start: 2026-01-05T00:00
lines:
  alice: {plan: tmobile-data-stash-10gb}
events:
"""
FEB5 = datetime(2026, 2, 5, 5, 0, tzinfo=UTC)  # the boundary, 00:00 in New York


def _timeline(tmp_path, events: str):
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + events)
    result = run(load_scenario(path, load_presets()))
    assert not result.problems, result.problems
    return result.timeline


def _rows(timeline, what):
    return [(r.at, r.line, r.detail) for r in timeline if r.what == what]


def test_a_check_first_past_the_boundary_shows_the_deposit(tmp_path):
    timeline = _timeline(tmp_path, """  - {at: 2026-01-10T12:00, line: alice, usage: 3GB}
  - {at: 2026-02-06T00:00, line: alice, check: true}
""")
    deposits = _rows(timeline, "rollover_in")
    assert [(at, line) for at, line, _ in deposits] == [(FEB5, "alice")]
    assert deposits[0][2].startswith("7GB ")
    # listed before the check that came after it
    assert [r.what for r in timeline].index("rollover_in") < [r.what for r in timeline].index(
        "check")


def test_the_deposit_is_shown_once_whatever_crosses_first(tmp_path):
    by_check = _timeline(tmp_path, """  - {at: 2026-01-10T12:00, line: alice, usage: 3GB}
  - {at: 2026-02-06T00:00, line: alice, check: true}
  - {at: 2026-02-07T00:00, line: alice, usage: 1GB}
""")
    by_usage = _timeline(tmp_path, """  - {at: 2026-01-10T12:00, line: alice, usage: 3GB}
  - {at: 2026-02-07T00:00, line: alice, usage: 1GB}
  - {at: 2026-02-08T00:00, line: alice, check: true}
""")
    assert _rows(by_check, "rollover_in") == _rows(by_usage, "rollover_in")
    assert len(_rows(by_check, "rollover_in")) == 1


def test_an_expiry_crossed_by_a_check_is_shown_at_its_instant(tmp_path):
    timeline = _timeline(tmp_path, """\
  - {at: 2026-01-10T12:00, line: alice, topup: 1GB, valid_days: 3}
  - {at: 2026-01-20T00:00, line: alice, check: true}
""")
    expiries = _rows(timeline, "expire")
    assert [at for at, _, _ in expiries] == [datetime(2026, 1, 13, 17, 0, tzinfo=UTC)]


def test_a_qos_change_of_a_late_event_is_stamped_at_its_arrival(tmp_path):
    timeline = _timeline(tmp_path, """\
  - {at: 2026-01-10T12:00, line: alice, usage: 11GB, received_at: 2026-01-25T08:00}
""")
    (change,) = _rows(timeline, "qos")
    assert change[0] == datetime(2026, 1, 25, 13, 0, tzinfo=UTC)   # arrival, not 01-10
    assert "throttled" in change[2]


def test_a_boundary_that_restores_speed_is_shown_at_the_boundary(tmp_path):
    timeline = _timeline(tmp_path, """  - {at: 2026-01-10T12:00, line: alice, usage: 11GB}
  - {at: 2026-02-10T00:00, line: alice, check: true}
""")
    changes = _rows(timeline, "qos")
    assert [(at, detail.split(" at ")[0]) for at, _, detail in changes] == [
        (datetime(2026, 1, 10, 17, 0, tzinfo=UTC), "normal -> throttled"),
        (FEB5, "throttled -> normal")]


def test_check_detail_names_the_unit_of_voice_and_sms(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("""timezone: UTC
bill_cycle_day: 1
start: 2026-01-01T00:00
plans:
  - {id: talk, kind: metered, allowance: {data: 1GB, voice: 300min, sms: 100}}
lines:
  bob: {plan: talk}
events:
  - {at: 2026-01-02T00:00, line: bob, usage: 90s, unit: voice}
  - {at: 2026-01-03T00:00, line: bob, check: true}
""")
    result = run(load_scenario(path, load_presets()))
    (check,) = _rows(result.timeline, "check")
    assert check[2] == "available data 1GB, voice 17910s, sms 100 SMS"
