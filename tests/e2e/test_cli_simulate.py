"""The simulate command as a user runs it: exit codes, JSON lines, problems named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carryover.cli import app
from carryover.docs_cli import render

GB = 1024**3
runner = CliRunner()
ONE = "lines: {a: {plan: travel-5gb-30d}}\nevents:\n  - "
ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_cli_reference_is_generated_from_help():
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == render(), "docs/cli.md drifted: run `make docs`"


def test_json_prints_one_object_per_line_per_check(tmp_path):
    path = write(tmp_path, """
timezone: Europe/Berlin
bill_cycle_day: 1
start: 2026-01-01T00:00
lines:
  a: {plan: tmobile-data-stash-10gb}
  b: {plan: verizon-carryover-8gb}
events:
  - {at: 2026-01-02T10:00, line: a, usage: 1GB}
  - {at: 2026-01-03T00:00, check: true}
""")
    result = runner.invoke(app, ["simulate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert [o["line"] for o in objects] == ["a", "b"]
    # 10 GB - 1 GB used = 9 GB for a; b untouched: 8 GB.
    assert objects[0]["available"] == {"data": 9 * GB}
    assert objects[1]["available"] == {"data": 8 * GB}
    # 2026-01-03 00:00 in Berlin (UTC+1 in winter) is 2026-01-02 23:00 UTC.
    assert objects[0]["at"] == "2026-01-02T23:00:00+00:00"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("lines: {a: {plan: no-such-plan}}\nevents: []",
         ["lines.a.plan: unknown plan 'no-such-plan'"]),
        (ONE + "{at: 2026-01-02T00:00, line: zed, usage: 1GB}",
         ["events[0].line: unknown line 'zed'"]),
        (ONE + "{at: 2025-12-31T00:00, line: a, usage: 1GB}",
         ["events[0].at: 2025-12-31T00:00 is before the scenario's start"]),
        (ONE + "{at: 2026-01-02T00:00, line: a, usage: -1GB}",
         ["events[0].usage: '-1GB' is negative"]),
        (ONE + "{at: 2026-02-30T00:00, line: a, usage: 1GB}",
         ["events[0].at: '2026-02-30T00:00' is not an instant"]),
        (ONE + "{line: a, usage: 1GB}",
         ["events[0].at: missing field"]),
        (ONE + "{at: 2026-01-02T00:00, line: a, usage: 10 GBs}",
         ["events[0].usage: '10 GBs' is not an amount"]),
    ],
)
def test_bad_input_exits_2_naming_file_event_and_field(tmp_path, body, expected):
    path = write(tmp_path, "timezone: UTC\nbill_cycle_day: 1\nstart: 2026-01-01T00:00\n" + body)
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    for fragment in expected:
        assert any(line.startswith(f"{path}: ") and fragment in line
                   for line in result.output.splitlines()), result.output


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """
timezone: Mars/Olympus
bill_cycle_day: 40
start: 2026-01-01T00:00
""")
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 or any("bill_cycle_day" in line for line in lines)
    assert any("Mars/Olympus" in line or "bill-cycle day 40" in line for line in lines)


def test_several_bad_events_each_get_a_line(tmp_path):
    path = write(tmp_path, """
timezone: UTC
bill_cycle_day: 1
start: 2026-01-01T00:00
lines: {a: {plan: travel-5gb-30d}}
events:
  - {at: 2026-01-02T00:00, line: a, usage: 1e3GB}
  - {at: 2026-01-03T00:00, line: a, usage: 1GB}
  - {at: 2026-01-04T00:00, line: b, usage: 1GB}
  - {at: 2026-01-05T00:00, line: a, topup: 1GB, valid_days: -3}
""")
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "events[0].usage", "events[2].line", "events[3].valid_days"]


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "timezone: UTC\nevents: [\n  {at: 2026\n")
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output and "line " in result.output


def test_missing_file_is_reported_not_raised(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_an_impossible_gift_is_a_problem_with_its_event_index(tmp_path):
    path = write(tmp_path, """
timezone: UTC
bill_cycle_day: 1
start: 2026-01-01T00:00
lines: {a: {plan: verizon-carryover-8gb}, b: {plan: verizon-carryover-8gb}}
events:
  - {at: 2026-01-02T00:00, line: b, gift_from: a, amount: 1GB}
""")
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    assert "events[0]" in result.output and "giftable" in result.output


def test_plan_show_reports_every_problem_of_a_plan_file(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text("id: x\nkind: metered\nallowance: {data: 10 GBs}\n"
                    "overage: {action: throttle}\nrollover: {stash_cap: -1GB}\n")
    result = runner.invoke(app, ["plan", "show", str(plan)])
    assert result.exit_code == 2
    out = result.output
    assert "allowance.data" in out and "overage.kbps" in out and "rollover.stash_cap" in out


def test_plan_list_json_has_every_preset():
    result = runner.invoke(app, ["plan", "list", "--json"])
    assert result.exit_code == 0
    ids = {p["id"] for p in json.loads(result.output)}
    assert ids == {
        "tmobile-data-stash-10gb", "att-mobile-share-15gb", "att-mobile-share-25gb",
        "verizon-carryover-8gb", "china-mobile-jiezhuan-20gb", "tmobile-go5g", "travel-5gb-30d",
    }
