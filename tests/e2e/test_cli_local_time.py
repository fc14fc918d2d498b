"""Time shown to people: the account's local time with its offset; JSON keeps ISO 8601.

docs/operations.md "Time on the screen" is the rule; carryover.human_time.local_time
is the one function that applies it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carryover.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# An ISO instant in UTC without the account's offset: what a person must never be shown.
BARE_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def berlin():
    cli("init")
    cli("account", "create", "kiez", "--cycle-day", "1", "--timezone", "Europe/Berlin",
        "--at", "2026-01-01T00:00")
    cli("line", "create", "--account", "kiez", "--msisdn", "+4915110000001", "--id", "ida",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-01T00:00")


def test_local_time_shows_the_zone_offset_and_labels_utc():
    from carryover.human_time import local_time

    at = datetime(2026, 1, 20, 5, 0, tzinfo=UTC)
    assert local_time(at, "Europe/Berlin") == "2026-01-20 06:00 +01:00"
    assert local_time(at, "America/New_York") == "2026-01-20 00:00 -05:00"
    assert local_time(datetime(2026, 7, 1, 12, tzinfo=UTC), "Europe/Berlin") == \
        "2026-07-01 14:00 +02:00"                                   # summer time
    assert local_time(at, None) == "2026-01-20 05:00 UTC"
    assert local_time(at, "UTC") == "2026-01-20 05:00 UTC"
    assert local_time("2026-01-20T05:00:30.25+00:00", "Europe/Berlin") == \
        "2026-01-20 06:00:30 +01:00"
    assert local_time(None, "Europe/Berlin") == "-"


def test_balance_of_a_berlin_account_is_in_berlin_time(berlin):
    out = cli("balance", "ida", "--at", "2026-01-20T00:00")
    assert "ida at 2026-01-20 00:00 +01:00" in out
    assert "2026-02-01 00:00 +01:00" in out                        # valid until, local
    assert not BARE_UTC.search(out), out
    view = json.loads(cli("balance", "ida", "--at", "2026-01-20T00:00", "--json"))
    assert view["at"] == "2026-01-19T23:00:00+00:00"               # JSON: ISO 8601, offset


def test_statement_of_a_berlin_account_is_in_berlin_time(berlin):
    out = cli("statement", "ida", "--at", "2026-01-20T00:00")
    assert "cycle 2026-01-01 00:00 +01:00 .. 2026-02-01 00:00 +01:00" in out
    assert not BARE_UTC.search(out), out
    data = json.loads(cli("statement", "ida", "--at", "2026-01-20T00:00", "--json"))
    assert data["cycle"]["start"] == "2025-12-31T23:00:00+00:00"


def test_simulate_shows_every_instant_in_the_scenario_zone(tmp_path):
    out = cli("simulate", str(EXAMPLES / "tmobile-data-stash.yaml"))
    assert not BARE_UTC.search(out), out
    # the late record's report instant is local like the rest of the row
    assert "reported 2026-02-06 08:00 -05:00" in out
    assert re.search(r"2026-02-05 00:00 -05:00", out)
