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


@pytest.fixture
def three_accounts(acme):
    cli("account", "create", "smith", "--cycle-day", "1", "--timezone", "Europe/London",
        "--pool-plan", "att-mobile-share-15gb", "--at", "2026-01-01T00:00")
    cli("account", "create", "berg", "--cycle-day", "1", "--timezone", "Europe/Berlin",
        "--at", "2026-01-01T00:00")
    for n, account in enumerate(["smith", "smith", "berg"]):
        cli("line", "create", "--account", account, "--msisdn", f"+4477009000{n:02d}",
            "--id", f"l{n}", "--start", "2026-01-01T00:00",
            *(["--plan", "travel-5gb-30d"] if account == "berg" else []))


def _pages(*command: str, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = json.loads(cli(*command, "--limit", str(limit), "--json",
                              *(["--after", after] if after else [])))
        pages.append([item.get("name") or item["id"] for item in page["items"]])
        after = page["next_after"]
        if after is None:
            return pages


def test_account_list_pages_and_filters(three_accounts):
    assert _pages("account", "list", limit=2) == [["acme", "berg"], ["smith"]]
    family = json.loads(cli("account", "list", "--family", "--json"))["items"]
    assert [(a["name"], a["pool_plan"], a["lines"]) for a in family] == [
        ("smith", "att-mobile-share-15gb", 2)]
    berlin = json.loads(cli("account", "list", "--timezone", "Europe/Berlin", "--json"))
    assert [a["name"] for a in berlin["items"]] == ["berg"]
    out = cli("account", "list", "--limit", "1")
    assert "acme" in out and "more: carryover account list --after acme" in out


def test_line_list_pages_and_filters(three_accounts):
    assert _pages("line", "list", limit=2) == [["alice", "l0"], ["l1", "l2"]]
    assert _pages("line", "list", "--account", "smith", limit=1) == [["l0"], ["l1"]]
    travel = json.loads(cli("line", "list", "--plan", "travel-5gb-30d", "--json"))["items"]
    assert [(ln["id"], ln["account"], ln["msisdn"]) for ln in travel] == [
        ("l2", "berg", "+447700900002")]
    assert "unknown account 'nope'" in cli("line", "list", "--account", "nope", code=2)


def test_a_duplicate_key_in_a_plan_file_is_refused_naming_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("id: dup-plan\nkind: metered\nallowance:\n  data: 10GB\n  data: 1GB\n")
    cli("init")
    for command in (("plan", "show", str(path)), ("plan", "load", str(path))):
        out = cli(*command, code=2)
        assert f"{path}:5:" in out and "duplicate key 'data' (first given on line 4)" in out
    assert "dup-plan" not in cli("plan", "list", columns=200)
    path.write_text("id: dup-plan\nkind: metered\nallowance:\n  data: 10GB\n")
    assert "data 10GB" in cli("plan", "show", str(path))


def test_a_duplicate_key_in_a_scenario_file_is_refused_naming_key_and_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("timezone: UTC\nbill_cycle_day: 1\nstart: 2026-01-01T00:00\n"
                    "plan: tmobile-data-stash-10gb\nevents:\n"
                    "  - {at: 2026-01-02T00:00, usage: 1GB}\n"
                    "timezone: Europe/Berlin\n")
    out = cli("simulate", str(path), code=2)
    assert "line 7" in out and "duplicate key 'timezone' (first given on line 1)" in out


def test_strict_yaml_keeps_merge_keys_and_distinct_keys():
    from carryover.adapters.strict_yaml import load_yaml

    assert load_yaml("base: &b {a: 1}\nx:\n  <<: *b\n  c: 2\n") == {
        "base": {"a": 1}, "x": {"a": 1, "c": 2}}
    assert load_yaml("1: a\n'1': b\n") == {1: "a", "1": "b"}


def test_the_demo_hint_names_a_command_that_runs(tmp_path, monkeypatch):
    from carryover.cli.demo_view import runnable_command

    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    exe = venv_bin / "carryover"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    # not on PATH (make demo does not activate the venv): the path from here
    assert runnable_command(str(exe), search_path="/usr/bin") == ".venv/bin/carryover"
    # on PATH and the same one: the plain name
    assert runnable_command(str(exe), search_path=str(venv_bin)) == "carryover"


def test_plan_show_names_a_plan_price(tmp_path):
    path = tmp_path / "priced.yaml"
    path.write_text("id: priced\nkind: metered\nallowance: {data: 5GB}\n"
                    "price: {per_cycle: '19.99', currency: EUR}\n")
    out = cli("plan", "show", str(path))
    assert "19.99 EUR per cycle" in out and "data 5GB" in out


def test_ingest_says_how_many_more_rows_were_rejected(acme, tmp_path):
    path = tmp_path / "cdr.csv"
    path.write_text("event_id,line,at,bytes\n" + "".join(
        f"e{n},nobody,2026-01-10T00:00:00Z,100\n" for n in range(7)))
    out = cli("ingest", str(path), code=2, columns=200)
    assert out.count("unknown line 'nobody'") == 5
    assert "... and 2 more rejected rows" in out


def test_each_invocation_is_as_wide_as_its_own_terminal():
    """The console is made once per process; an invocation in the same process (this
    runner, an embedding) still gets its own COLUMNS, whatever ran before it."""
    cli("init")
    narrow = cli("plan", "list", columns=60)
    wide = cli("plan", "list", columns=200)
    assert max(map(len, narrow.splitlines())) <= 60
    row = next(line for line in wide.splitlines() if "tmobile-go5g" in line)
    assert "never blocked" in row and "deprioritized after 100GB" in row
    assert max(map(len, cli("plan", "list", columns=60).splitlines())) <= 60
