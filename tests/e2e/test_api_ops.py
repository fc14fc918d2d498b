"""Operations of the API over loopback: probes, metrics, rate limit, size limit, `apikey` CLI."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from carryover.api.app import create_app
from carryover.cli import app
from carryover.runtime import Carryover
from carryover.services.access.rate_limits import RateLimiter
from carryover.settings import get_settings
from carryover.store.schema import head_revision
from tests.api_support import served_api
from tests.loopback import serving


def test_health_ready_and_metrics(db_url: str):
    with served_api(db_url) as api:
        assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
        ready = api.call("GET", "/readyz", None)
        assert ready.status_code == 200 and ready.json()["schema"] == head_revision()
        api.call("GET", "/v1/lines/a1")
        api.call("GET", "/v1/lines/nope")
        text = api.call("GET", "/metrics", None).text
        assert ('carryover_http_requests_total{method="GET",route="/v1/lines/{line}",'
                'status="200"} 1.0') in text
        assert 'route="/v1/lines/{line}",status="404"} 1.0' in text
        assert "carryover_http_request_seconds_bucket" in text
        assert api.tokens["operator"] not in text


def test_rate_limit_answers_429_with_retry_after(db_url: str):
    with served_api(db_url, api_rate_per_second=0.5, api_rate_burst=3) as api:
        codes = [api.call("GET", "/v1/plans", "acme").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = api.call("GET", "/v1/plans", "acme")
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["Retry-After"]) >= 1
        # Each key has its own bucket.
        assert api.call("GET", "/v1/plans", "other").status_code == 200


def test_rate_limiter_refills():
    limiter = RateLimiter(rate=2, burst=1)
    assert limiter.wait_for("k", now=0.0) == 0
    assert limiter.wait_for("k", now=0.1) > 0
    assert limiter.wait_for("k", now=0.7) == 0


def test_request_size_limit(db_url: str):
    with served_api(db_url, api_max_body_bytes=2048) as api:
        big = {"rows": [{"line": "a1", "event_id": f"e{i}", "amount": 1,
                         "at": "2026-01-02T00:00Z"} for i in range(100)]}
        response = api.call("POST", "/v1/usage/batch", json=big)
        assert response.status_code == 413
        assert response.json()["status"] == 413

        def chunks():  # no Content-Length: counted as it arrives
            yield json.dumps(big).encode()
        headers = {"Authorization": f"Bearer {api.tokens['operator']}",
                   "content-type": "application/json"}
        chunked = httpx.post(api.url + "/v1/usage/batch", content=chunks(), headers=headers)
        assert chunked.status_code == 413
        small = api.call("POST", "/v1/usage/batch", json={"rows": big["rows"][:3]})
        assert small.status_code == 200, small.text


def test_apikey_cli(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["account", "create", "acme", "--cycle-day", "1",
                               "--timezone", "UTC"]).exit_code == 0
    created = runner.invoke(app, ["apikey", "create", "--role", "subscriber",
                                  "--account", "acme", "--label", "app", "--json"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["token"].startswith("co_") and key["account"] == "acme"
    listed = runner.invoke(app, ["apikey", "list", "--json"])
    assert key["token"] not in listed.output
    assert [k["id"] for k in json.loads(listed.output)] == [key["id"]]
    revoked = runner.invoke(app, ["apikey", "revoke", key["id"], "--json"])
    assert json.loads(revoked.output)["revoked_at"]
    refused = runner.invoke(app, ["apikey", "create", "--role", "subscriber"])
    assert refused.exit_code == 2
    assert runner.invoke(app, ["apikey", "create", "--role", "subscriber",
                               "--account", "nope"]).exit_code == 2
    assert runner.invoke(app, ["apikey", "revoke", "key_nope"]).exit_code == 2
    text = runner.invoke(app, ["apikey", "create", "--role", "operator"])
    assert text.exit_code == 0 and "co_" in text.output


def test_unexpected_error_is_a_bare_500_problem(tmp_path):
    carry = Carryover(get_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    app = create_app(carry)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with serving(app) as url:
        response = httpx.get(url + "/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.json()["title"] == "Internal error"
