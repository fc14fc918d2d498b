"""Rough edges a newcomer met on the command line (issue 16 item 7), one test each."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from carryover.cli import app

runner = CliRunner()
GB = 1024**3


def cli(*args: str, code: int = 0, columns: int = 100) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def acme():
    cli("init")
    cli("account", "create", "acme", "--cycle-day", "5", "--timezone", "America/New_York",
        "--at", "2026-01-05T00:00")
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550100", "--id", "alice",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-05T00:00")


def test_apikey_list_shows_whole_ids_at_80_columns_and_they_revoke(acme):
    for n in range(2):
        cli("apikey", "create", "--role", "subscriber", "--account", "acme",
            "--label", f"a rather long label for key number {n}")
    ids = [k["id"] for k in json.loads(cli("apikey", "list", "--json"))]
    out = cli("apikey", "list", columns=80)
    for key_id in ids:
        assert key_id in out, out
    shown = re.findall(r"key_[0-9a-f]+", out)
    assert sorted(shown) == sorted(ids)
    cli("apikey", "revoke", shown[0])


def test_plan_show_prints_human_sizes_and_json_stays_exact():
    cli("init")
    out = cli("plan", "show", "tmobile-data-stash-10gb")
    assert "data 10GB" in out and "stash cap data 20GB" in out
    assert "10737418240" not in out and "21474836480" not in out
    data = json.loads(cli("plan", "show", "tmobile-data-stash-10gb", "--json"))
    assert data["allowance"]["data"] == 10 * GB
    assert data["rollover"]["stash_cap"] == {"data": 20 * GB}


def test_plan_list_says_unlimited_go5g_is_never_blocked():
    cli("init")
    row = next(line for line in cli("plan", "list", columns=200).splitlines()
               if "tmobile-go5g" in line)
    assert "never blocked" in row and "deprioritized after 100GB" in row
    assert "│ block" not in row
    travel = next(line for line in cli("plan", "list", columns=200).splitlines()
                  if "travel-5gb-30d" in line)
    assert "block" in travel                                       # a pack does run out


@pytest.mark.parametrize("command", [("topup", "alice", "0B", "--valid-days", "30"),
                                     ("topup", "alice", "0GB", "--valid-days", "1")])
def test_a_zero_top_up_is_refused_with_exit_2(acme, command):
    out = cli(*command, "--at", "2026-01-06T00:00", code=2)
    assert "above 0" in out
    balance = json.loads(cli("balance", "alice", "--at", "2026-01-06T00:00", "--json"))
    assert [b["kind"] for b in balance["buckets"]] == ["allowance"]


def test_an_msisdn_without_plus_is_refused(acme):
    out = cli("line", "create", "--account", "acme", "--msisdn", "14155550199",
              "--plan", "tmobile-data-stash-10gb", code=2)
    assert "'14155550199' is not an E.164 number" in out and "+14155550100" in out
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550199",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-05T00:00")
