"""`carryover webhooks` end to end on a real SQLite file, with a loopback receiver."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from carryover.cli import app
from tests.integration.test_webhooks import Receiver
from tests.loopback import serving

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_add_deliver_dead_replay(monkeypatch):
    monkeypatch.setenv("CARRYOVER_WEBHOOK_BACKOFF", "0")
    monkeypatch.setenv("CARRYOVER_WEBHOOK_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("CARRYOVER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")  # loopback receiver
    cli("init")
    cli("account", "create", "a", "--cycle-day", "1", "--timezone", "UTC",
        "--at", "2026-01-01T00:00")
    cli("line", "create", "--account", "a", "--msisdn", "+14155550101", "--id", "l",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-01T00:00")
    receiver = Receiver(fail_first=1)
    with serving(receiver.app()) as base:
        added = json.loads(cli("webhooks", "add", base + "/hook", "--kinds", "usage_50",
                               "--json"))
        assert added["secret"].startswith("whsec_") and added["kinds"] == ["usage_50"]
        assert "secret" not in cli("webhooks", "list", "--json")
        cli("webhooks", "add", "ftp://x", code=2)
        cli("usage", "add", "l", "6GB", "--at", "2026-01-02T00:00",
            "--received-at", "2026-01-02T00:00")
        assert json.loads(cli("webhooks", "deliver", "--once", "--json"))["dead"] == 1
        dead = json.loads(cli("webhooks", "dead", "--json"))
        assert [d["kind"] for d in dead] == ["usage_50"]
        cli("webhooks", "replay", str(dead[0]["id"]))
        assert json.loads(cli("webhooks", "deliver", "--once", "--json"))["delivered"] == 1
    assert json.loads(cli("webhooks", "dead", "--json")) == []
    assert len(receiver.received) == 1
