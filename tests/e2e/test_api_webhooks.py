"""Webhook endpoints, dead letters, replay and the outbox gauges over real HTTP.

On SQLite and PostgreSQL: operator keys manage endpoints, subscriber keys get
403; the secret is in the first response only (not in an Idempotency-Key
replay, not in lists); a receiver on loopback that fails makes dead letters,
which a replay delivers once it is back; `/metrics` shows the pending
deliveries and the outbox lag move with them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from carryover.cli import app as cli_app
from carryover.services.notify import webhooks
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.api_support import Api, served_api
from tests.e2e.test_api_metrics import scrape
from tests.integration.test_webhooks import Receiver, verified
from tests.loopback import serving

GB = 1024**3
SETTINGS = {"webhook_worker": False, "webhook_max_attempts": 1, "webhook_backoff": 0.01,
            "webhook_allow_private_targets": True}  # the receivers are on loopback
PENDING, LAG = ("carryover_webhook_deliveries_pending", ()), ("carryover_outbox_lag_seconds", ())


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url, **SETTINGS) as served:
        served.settings = get_settings(database_url=db_url, **SETTINGS)  # type: ignore[attr-defined]
        yield served


def use(api: Api, line: str, event_id: str, amount: int) -> None:
    at = "2026-01-02T00:00Z"
    response = api.call("POST", "/v1/usage", json={"line": line, "event_id": event_id,
                                                  "amount": amount, "at": at,
                                                  "received_at": at})
    assert response.status_code == 201, response.text


def test_subscriber_keys_are_refused(api: Api):
    for method, path, body in (("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/h"}),
                               ("GET", "/v1/webhooks", None),
                               ("GET", "/v1/webhooks/dead", None),
                               ("DELETE", "/v1/webhooks/wh_0000000000000000", None),
                               ("POST", "/v1/webhooks/deliveries/1/replay", None)):
        response = api.call(method, path, "acme", json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert api.call("GET", "/v1/webhooks", None).status_code == 401
    assert api.call("GET", "/v1/webhooks").json()["items"] == []


def test_secret_once_dead_letters_replay_and_gauges(api: Api):
    before = scrape(api)
    assert before[PENDING] == 0 and before[LAG] == 0
    assert before[("carryover_business_metrics_up", ())] == 1
    receiver = Receiver(fail_first=10**6)
    with serving(receiver.app()) as base:
        body = {"url": base + "/hook", "kinds": ["usage_50", "blocked"]}
        key = {"Idempotency-Key": "hook-1"}
        first = api.call("POST", "/v1/webhooks", json=body, headers=key)
        assert first.status_code == 201, first.text
        created = first.json()
        secret = created["secret"]
        assert secret.startswith("whsec_") and created["kinds"] == ["blocked", "usage_50"]
        again = api.call("POST", "/v1/webhooks", json=body, headers=key)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == {**created, "secret": None}
        listed = api.call("GET", "/v1/webhooks")
        assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
        assert secret not in listed.text and "secret" not in listed.text
        bad = api.call("POST", "/v1/webhooks", json={"url": "ftp://x", "kinds": None})
        assert bad.status_code == 422

        # 6 GB on a 5 GB travel pack: usage_50 and blocked for this endpoint.
        use(api, "a1", "ev-1", 6 * GB)
        time.sleep(1.1)
        waiting = scrape(api)
        assert waiting[PENDING] == 2
        assert waiting[LAG] >= 1
        webhooks.deliver_once(UnitOfWork(api.engine), api.settings)  # type: ignore[attr-defined]
        settled = scrape(api)
        assert settled[PENDING] == 0 and settled[LAG] == 0

        page = api.call("GET", "/v1/webhooks/dead?limit=1").json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = api.call("GET", f"/v1/webhooks/dead?cursor={page['next_cursor']}").json()
        dead = page["items"] + rest["items"]
        assert rest["next_cursor"] is None
        assert sorted(d["kind"] for d in dead) == ["blocked", "usage_50"]
        assert all(d["endpoint"] == created["id"] and d["attempts"] == 1 for d in dead)
        assert api.call("GET", "/v1/webhooks/dead?cursor=!!").status_code == 422

        receiver.fail_first = 0
        replayed = api.call("POST", f"/v1/webhooks/deliveries/{dead[0]['id']}/replay")
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"id": dead[0]["id"], "status": "pending",
                                   "previous": "dead"}
        assert scrape(api)[PENDING] == 1
        webhooks.deliver_once(UnitOfWork(api.engine), api.settings)  # type: ignore[attr-defined]
        assert len(receiver.received) == 1
        payload, headers = receiver.received[0]
        assert verified(secret, payload, headers)
        assert headers["x-carryover-event"] == str(dead[0]["event"])
        assert scrape(api)[PENDING] == 0
        assert api.call("POST", "/v1/webhooks/deliveries/999999/replay").status_code == 404

        removed = api.call("DELETE", f"/v1/webhooks/{created['id']}")
        assert removed.status_code == 200 and removed.json()["disabled_at"]
        assert removed.json()["delivered"] == 1 and removed.json()["dead"] == 1
        assert api.call("DELETE", f"/v1/webhooks/{created['id']}").status_code == 200
        assert api.call("DELETE", "/v1/webhooks/wh_unknown").status_code == 404
        # A removed endpoint gets nothing new and its dead letters cannot be replayed.
        use(api, "a2", "ev-2", 6 * GB)
        assert scrape(api)[PENDING] == 0
        refused = api.call("POST", f"/v1/webhooks/deliveries/{dead[1]['id']}/replay")
        assert refused.status_code == 422
        webhooks.deliver_once(UnitOfWork(api.engine), api.settings)  # type: ignore[attr-defined]
        assert len(receiver.received) == 1


def test_cli_remove(monkeypatch, tmp_path):
    monkeypatch.setenv("CARRYOVER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CARRYOVER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    runner = CliRunner()
    assert runner.invoke(cli_app, ["init"]).exit_code == 0
    added = runner.invoke(cli_app, ["webhooks", "add", "http://127.0.0.1:9/h", "--json"])
    ident = json.loads(added.output)["id"]
    removed = runner.invoke(cli_app, ["webhooks", "remove", ident])
    assert removed.exit_code == 0 and f"endpoint {ident} removed" in removed.output
    listed = json.loads(runner.invoke(cli_app, ["webhooks", "list", "--json"]).output)
    assert listed[0]["disabled_at"] is not None
    assert runner.invoke(cli_app, ["webhooks", "remove", "wh_nope"]).exit_code != 0
