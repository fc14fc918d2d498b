"""Idempotency-Key on any path: the stored identity of a route is fixed-length.

A schemathesis run found a 500 on PostgreSQL for a plan change on a line id of a
few hundred characters sent with an Idempotency-Key: the concrete path was stored
as the route in a VARCHAR(200). The route is stored by a SHA-256 of its method and
path now, so any path the server accepts has its first answer kept and replayed,
and two paths never share one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api_support import Api, served_api

LONG_LINE = "ℓïñé-" * 120  # 600 characters, 1,200 and more bytes as UTF-8
CHANGE = {"plan": "travel-5gb-30d", "effective": "now"}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        yield served


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def test_a_long_unicode_path_with_a_key_is_answered_and_replayed(api: Api) -> None:
    path = f"/v1/lines/{LONG_LINE}/plan-change"
    headers = {"Idempotency-Key": "long-path-1"}
    first = api.call("POST", path, json=CHANGE, headers=headers)
    body = problem(first, 404)
    assert "Idempotent-Replayed" not in first.headers
    again = api.call("POST", path, json=CHANGE, headers=headers)
    assert problem(again, 404) == body
    assert again.headers["Idempotent-Replayed"] == "true"
    # Another long path that differs only near its end is another request.
    other = api.call("POST", f"/v1/lines/{LONG_LINE}x/plan-change", json=CHANGE,
                     headers=headers)
    problem(other, 404)
    assert "Idempotent-Replayed" not in other.headers
    # The same key on a short path of the same route is its own, and runs.
    done = api.call("POST", "/v1/lines/a1/plan-change", json=CHANGE, headers=headers)
    assert done.status_code == 201, done.text
    replay = api.call("POST", "/v1/lines/a1/plan-change", json=CHANGE, headers=headers)
    assert replay.status_code == 201 and replay.json() == done.json()
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_odd_paths_with_a_key_are_answered(api: Api) -> None:
    headers = {"Idempotency-Key": "odd"}
    # Bytes that are not UTF-8 decode to U+FFFD: an unknown line, replayed.
    path = "/v1/lines/%ff%fe" + "%ff" * 300 + "/plan-change"
    first = problem(api.call("POST", path, json=CHANGE, headers=headers), 404)
    again = api.call("POST", path, json=CHANGE, headers=headers)
    assert problem(again, 404) == first and again.headers["Idempotent-Replayed"] == "true"
    # A control character in the path is refused before anything is stored.
    for _ in range(2):
        problem(api.call("POST", "/v1/lines/a%001/plan-change", json=CHANGE,
                         headers=headers), 422)


def test_every_keyed_route_takes_a_long_path(api: Api) -> None:
    for suffix, body in (("top-ups", {"amount": 1_000_000, "valid_days": 7}),
                         ("limit", {"amount": 1_000_000}),
                         ("gifts", {"to_line": "a2", "amount": 1})):
        path = f"/v1/lines/{LONG_LINE}/{suffix}"
        headers = {"Idempotency-Key": f"long-{suffix}"}
        first = problem(api.call("POST", path, json=body, headers=headers), 404)
        again = api.call("POST", path, json=body, headers=headers)
        assert problem(again, 404) == first
        assert again.headers["Idempotent-Replayed"] == "true"


def test_the_idempotency_key_header_is_bounded_and_named(api: Api) -> None:
    body = {"name": "bounded", "cycle_day": 3, "timezone": "UTC"}
    for key in ("k" * 201, ""):
        refused = problem(api.call("POST", "/v1/accounts", json=body,
                                   headers={"Idempotency-Key": key}), 422)
        assert [e["field"] for e in refused["errors"]] == ["header.Idempotency-Key"]
    # The bound counts the header's bytes (ASCII, or each byte of UTF-8), as stored.
    refused = problem(api.call("POST", "/v1/accounts", json=body,
                               headers={"Idempotency-Key": ("é" * 101).encode()}), 422)
    assert [e["field"] for e in refused["errors"]] == ["header.Idempotency-Key"]
    for longest in ("k" * 200, ("é" * 100).encode()):
        account = {**body, "name": f"bounded-{len(longest)}-{type(longest).__name__}"}
        headers = {"Idempotency-Key": longest}
        first = api.call("POST", "/v1/accounts", json=account, headers=headers)
        assert first.status_code == 201, first.text
        again = api.call("POST", "/v1/accounts", json=account, headers=headers)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
