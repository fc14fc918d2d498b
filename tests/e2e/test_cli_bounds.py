"""Bounds at the command line: out-of-bound amounts and instants exit 2 with one line."""

from __future__ import annotations

from typer.testing import CliRunner

from carryover.cli import app

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def setup() -> None:
    cli("account", "create", "acme", "--cycle-day", "1", "--timezone", "UTC",
        "--at", "2026-01-01T00:00Z")
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550100",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-01T00:00Z")


def test_usage_add_past_two_to_the_fifty_exits_2_naming_amount_and_bound() -> None:
    setup()
    for amount in (str(2**63 - 1), str(2**50 + 1), "2000TB"):
        out = cli("usage", "add", "+14155550100", amount, "--at", "2026-01-02T00:00Z", code=2)
        assert out.count("\n") == 1 and out.startswith("AMOUNT: ")
        assert "2^50 (1,125,899,906,842,624)" in out
        assert "Traceback" not in out
    cli("usage", "add", "+14155550100", str(2**50), "--at", "2026-01-02T00:00Z")
    out = cli("family", "limit", "+14155550100", f"{2**61}B", code=2)
    assert "2^60" in out
