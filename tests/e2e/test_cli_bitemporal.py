"""Issue 15 defect 1 through the CLI, on both backends: a back-dated line's statements.

Account and line p1 start in the past; usage for p1 with no --received-at moves
the book to now; then line p2 starts in the past. The corrections that bring p2
into the book are all booked now; were they also dated now, p2's first statement
would show `grant 0` and one `adjust` per bucket of every later cycle, and later
cycles no grant at all, while `balance` in the same cycle says one allowance.
Each is effective in the cycle it corrects (docs/semantics.md, "The bitemporal
ledger"), and the tests below check every statement against that.

The plan is T-Mobile Data Stash 10 GB: nothing used on p2, so each boundary
deposits the whole allowance into the stash. p2's October closes at 10 GB,
November at 20 GB (its allowance plus October's deposit), December opens there.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from carryover.cli import app

GB = 1024**3
runner = CliRunner()
PLAN = "tmobile-data-stash-10gb"


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def back_dated(db_url, monkeypatch):
    monkeypatch.setenv("CARRYOVER_DATABASE_URL", db_url)
    cli("init")
    cli("account", "create", "acme", "--cycle-day", "1", "--timezone", "UTC",
        "--at", "2026-09-01T00:00")
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550001", "--id", "p1",
        "--plan", PLAN, "--start", "2026-09-01T00:00")
    cli("usage", "add", "p1", "1GB", "--at", "2026-09-10T00:00", "--event-id", "e1")
    before_p2 = datetime.now().astimezone()
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550002", "--id", "p2",
        "--plan", PLAN, "--start", "2026-10-01T00:00")
    return before_p2


def statement(line: str, at: str, *more: str) -> dict:
    return json.loads(cli("statement", line, "--at", at, "--json", *more))


def own_remaining(line: str, at: datetime) -> int:
    view = json.loads(cli("balance", line, "--at", at.isoformat(), "--json"))
    return sum(b["remaining"] for b in view["buckets"] if b["owner"] == line)


def test_back_dated_line_statements_grant_each_cycle_and_chain(back_dated):
    cycles = [(datetime.fromisoformat(f"2026-{m:02}-01T00:00+00:00"),
               datetime.fromisoformat(f"2026-{m + 1:02}-01T00:00+00:00")) for m in (10, 11)]
    previous_closing = 0
    for start, end in cycles:
        data = statement("p2", (start + timedelta(days=14)).isoformat())["units"]["data"]
        assert data["grant"] == 10 * GB  # the allowance in force, in every cycle
        assert data["adjust"] == 0  # nothing was booked wrong and corrected
        assert data["opening"] == previous_closing
        assert data["closing"] == own_remaining("p2", end - timedelta(microseconds=1))
        assert data["balance_check"] == 0
        previous_closing = data["closing"]
    assert previous_closing == 20 * GB
    december = statement("p2", "2026-12-01T00:00Z")["units"]["data"]
    assert (december["opening"], december["grant"]) == (20 * GB, 10 * GB)
    # The balance in p2's first cycle says one allowance; so does its statement.
    first = statement("p2", "2026-10-15T00:00Z")["units"]["data"]
    assert first["closing"] == own_remaining("p2", datetime.fromisoformat(
        "2026-10-31T23:59:59+00:00")) == 10 * GB


def test_as_of_shows_what_was_told_then(back_dated):
    # Before p2 was created nothing of it was recorded: its statement as of then is
    # empty, although every entry it has now is effective in that October.
    then = statement("p2", "2026-10-15T00:00Z", "--as-of", back_dated.isoformat())
    assert then["entries"] == []
    assert all(v in (0, None) for unit in then["units"].values() for v in unit.values())
    now = statement("p2", "2026-10-15T00:00Z")
    assert now["units"]["data"]["grant"] == 10 * GB
    assert all(e["recorded_at"] > back_dated.isoformat() for e in now["entries"])
    assert all("2026-10-01" <= e["at"] < "2026-11-01" for e in now["entries"])


def test_as_of_must_be_an_instant(back_dated):
    out = cli("statement", "p2", "--as-of", "yesterday", code=2)
    assert "--as-of" in out
