"""Bounds over HTTP (issue 22 item 2 and item 9): 4xx naming the field, never a 5xx,
never a request that holds the database."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.api_support import Api, served_api

USAGE = {"line": "a1", "event_id": "ev-1", "amount": 1_048_576, "at": "2026-01-02T00:00Z",
         "received_at": "2026-01-02T00:05Z"}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        yield served


def problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.text


def test_instants_out_of_the_window_are_4xx_at_once(api: Api) -> None:
    started = time.monotonic()
    for at in ("9999-12-01T00:00Z", "2226-01-01T00:00Z"):
        text = problem(api.call("GET", "/v1/lines/a1/balance", params={"at": at}), 422)
        assert "at: " in text and "days ahead of now" in text
    text = problem(api.call("GET", "/v1/lines/a1/statement",
                            params={"at": "0001-01-01T00:00Z"}), 422)
    assert "before line 'a1' started" in text
    text = problem(api.call("POST", "/v1/usage", json={
        **USAGE, "at": "9999-12-31T00:00Z", "received_at": "9999-12-31T00:00Z"}), 422)
    assert "at: 9999-12-31" in text and "in the future" in text
    assert time.monotonic() - started < 10
    # A batch row out of the window is a reject of that row, the others go in.
    out = api.call("POST", "/v1/usage/batch", json={"rows": [
        {**USAGE, "event_id": "b1"},
        {**USAGE, "event_id": "b2", "received_at": "9999-01-01T00:00Z"}]}).json()
    assert (out["accepted"], out["rejected"]) == (1, 1)
    assert out["rejects"][0]["row"] == 1
    assert out["rejects"][0]["reason"].startswith("received_at: 9999-01-01")


def test_the_tenth_usage_of_a_billion_billion_bytes_is_a_422_not_a_5xx(api: Api) -> None:
    for n in range(10):
        text = problem(api.call("POST", "/v1/usage", json={
            **USAGE, "event_id": f"big-{n}", "amount": 10**18 - 1}), 422)
        assert "amount" in text and "1125899906842624" in text
    r = api.call("POST", "/v1/lines/a1/top-ups", json={"amount": 2**50 + 1, "valid_days": 3})
    problem(r, 422)
    r = api.call("POST", "/v1/usage", json={**USAGE, "event_id": "max", "amount": 2**50})
    assert r.status_code == 201, r.text
