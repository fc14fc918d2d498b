"""The REST API over real HTTP on loopback, on SQLite and PostgreSQL.

Every route is called with an operator key, and with the key of a subscriber
of another account, which must get the 404 an unknown line or account gets
(same problem, same words); operator-only routes refuse subscriber keys with
403. Also: 401, idempotent replays, problem+json shapes, cursor pagination.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from carryover.services.access import api_keys, idempotency
from carryover.services.ledger.directory import unknown_line
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, PLAN, SELF_SERVICE, Api, served_api

AT = "2026-01-05T00:00:00+00:00"
USAGE = {"line": "a1", "event_id": "ev-1", "amount": 1_048_576, "at": "2026-01-02T00:00Z",
         "received_at": "2026-01-02T00:05Z"}

# (method, path, body, operator status) of every route a subscriber may call on its own lines.
LINE_ROUTES = [
    ("GET", "/v1/lines/{line}", None, 200),
    ("GET", "/v1/lines/{line}/balance?at=2026-01-05T00:00Z", None, 200),
    ("GET", "/v1/lines/{line}/statement?at=2026-01-05T00:00Z", None, 200),
    ("GET", "/v1/lines/{line}/qos?at=2026-01-05T00:00Z", None, 200),
    # A subscriber acts at now (no `at`), on a plan offered for self-service.
    ("POST", "/v1/lines/{line}/plan-change", {"plan": SELF_SERVICE, "effective": "next_cycle"},
     201),
]
OPERATOR_ONLY = [
    ("POST", "/v1/accounts", {"name": "new", "cycle_day": 5, "timezone": "Europe/Paris"}),
    ("POST", "/v1/lines", {"account": "acme", "msisdn": "+14155550199", "plan": PLAN,
                           "start": AT}),
    ("POST", "/v1/usage", USAGE),
    ("POST", "/v1/usage/batch", {"rows": [USAGE]}),
    ("POST", "/v1/lines/a1/top-ups", {"amount": 1_000_000, "valid_days": 7, "at": AT}),
]


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        yield served


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(("method", "path", "body", "status"), LINE_ROUTES)
def test_line_routes_for_operator_owner_and_stranger(api: Api, method, path, body, status):
    for who in ("operator", "acme"):
        response = api.call(method, path.format(line="a1"), who, json=body)
        assert response.status_code == status, (who, response.text)
        assert response.headers["content-type"] == "application/json"
    # Another account's subscriber: exactly what a line that does not exist gets.
    for ident in ("a1", "+14155550101"):
        stranger = is_problem(api.call(method, path.format(line=ident), "other", json=body), 404)
        missing = is_problem(api.call(method, path.format(line=ident + "9"), "operator",
                                      json=body), 404)
        assert stranger["detail"] == str(unknown_line(ident))
        assert missing["detail"] == str(unknown_line(ident + "9"))
        assert stranger["title"] == missing["title"] and stranger["type"] == missing["type"]


def test_family_limit_and_gift(api: Api):
    top = api.call("POST", "/v1/lines/f1/top-ups", json={"amount": 10_000_000, "valid_days": 30,
                                                        "at": "2026-01-03T00:00Z"})
    assert top.status_code == 201, top.text
    assert top.json()["amount_human"] == "9.54MB"
    for who in ("operator", "fam"):
        # The operator may say when; a subscriber acts at now, on bytes valid now.
        when = {"at": "2026-01-04T00:00Z"} if who == "operator" else {}
        if who == "fam":
            assert api.call("POST", "/v1/lines/f1/top-ups", json={
                "amount": 10_000_000, "valid_days": 30}).status_code == 201
        limit = api.call("POST", "/v1/lines/f1/limit", who,
                         json={"amount": 1_073_741_824, **when})
        assert limit.status_code == 201, limit.text
        assert limit.json()["amount_human"] == "1GB"
        gift = api.call("POST", "/v1/lines/f1/gifts", who,
                        json={"to_line": "f2", "amount": 1000, **when})
        assert gift.status_code == 201, gift.text
        assert gift.json()["detail"] == {"to_line": "f2"}
    # A stranger can neither limit nor gift, and cannot gift to another account's line.
    is_problem(api.call("POST", "/v1/lines/f1/limit", "other", json={"amount": 1}), 404)
    is_problem(api.call("POST", "/v1/lines/f1/gifts", "other",
                        json={"to_line": "f2", "amount": 1}), 404)
    is_problem(api.call("POST", "/v1/lines/f1/gifts", "fam",
                        json={"to_line": "o1", "amount": 1}), 404)
    # A line outside a family pool has no member limit: a refusal, not a crash.
    is_problem(api.call("POST", "/v1/lines/a1/limit", json={"amount": 1}), 422)


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ONLY)
def test_operator_only_routes(api: Api, method, path, body):
    for who in ("acme", "other"):
        assert is_problem(api.call(method, path, who, json=body), 403)["detail"]
    response = api.call(method, path, json=body)
    assert response.status_code in (200, 201), response.text


def test_accounts(api: Api):
    created = api.call("POST", "/v1/accounts", json={
        "name": "zeta", "cycle_day": 5, "timezone": "America/New_York", "pool_plan": None,
        "at": "2026-01-01T00:00"})
    assert created.status_code == 201, created.text
    assert created.json()["created_at"] == "2026-01-01T05:00:00+00:00"  # read in its timezone
    assert api.call("GET", "/v1/accounts/zeta").json()["cycle_day"] == 5
    assert api.call("GET", "/v1/accounts/acme", "acme").json()["lines"] == ["a1", "a2"]
    stranger = is_problem(api.call("GET", "/v1/accounts/acme", "other"), 404)
    missing = is_problem(api.call("GET", "/v1/accounts/acmf", "operator"), 404)
    assert stranger["detail"] == "unknown account 'acme'"
    assert missing["detail"] == "unknown account 'acmf'"
    is_problem(api.call("POST", "/v1/accounts", json={
        "name": "zeta", "cycle_day": 5, "timezone": "UTC"}), 409)
    is_problem(api.call("POST", "/v1/accounts", json={
        "name": "bad-tz", "cycle_day": 5, "timezone": "Mars/Olympus"}), 422)
    is_problem(api.call("POST", "/v1/accounts", json={
        "name": "fam2", "cycle_day": 5, "timezone": "UTC", "pool_plan": "nope"}), 404)


def test_lines_create_and_paginate(api: Api):
    for n in range(5):
        created = api.call("POST", "/v1/lines", json={
            "account": "acme", "msisdn": f"+1415555070{n}", "plan": PLAN, "id": f"b{n}",
            "start": AT})
        assert created.status_code == 201, created.text
        assert created.json()["opened_at"] == AT
    is_problem(api.call("POST", "/v1/lines", json={
        "account": "acme", "msisdn": "+14155550700", "plan": PLAN}), 409)
    is_problem(api.call("POST", "/v1/lines", json={
        "account": "nope", "msisdn": "+14155550799", "plan": PLAN}), 404)
    is_problem(api.call("POST", "/v1/lines", json={
        "account": "acme", "msisdn": "12", "plan": PLAN}), 422)

    def walk(who: str, **query: str) -> list[str]:
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **query, **({"cursor": cursor} if cursor else {})}
            page = api.call("GET", "/v1/lines", who, params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= 2
            seen += [item["id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                return seen
            assert pages < 10

    everything = ["a1", "a2", "b0", "b1", "b2", "b3", "b4", "f1", "f2", "o1"]
    assert walk("operator") == everything
    assert walk("operator", account="other") == ["o1"]
    assert walk("acme") == ["a1", "a2", "b0", "b1", "b2", "b3", "b4"]
    assert walk("other") == ["o1"]
    is_problem(api.call("GET", "/v1/lines?account=acme", "other"), 404)
    is_problem(api.call("GET", "/v1/lines", params={"cursor": "%%%"}), 422)
    is_problem(api.call("GET", "/v1/lines", params={"limit": 0}), 422)


def test_plans(api: Api):
    first = api.call("GET", "/v1/plans", "acme", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = api.call("GET", "/v1/plans", "acme",
                    params={"cursor": first["next_cursor"], "limit": 100}).json()
    ids = [p["id"] for p in first["items"] + rest["items"]]
    assert PLAN in ids and ids == sorted(set(ids)) and rest["next_cursor"] is None
    plan = api.call("GET", f"/v1/plans/{PLAN}", "other").json()
    assert plan["definition"]["allowance"] == {"data": "5GB"}
    is_problem(api.call("GET", "/v1/plans/nope"), 404)


def test_usage_one_and_batch(api: Api):
    one = api.call("POST", "/v1/usage", json=USAGE)
    assert one.status_code == 201, one.text
    body = one.json()
    assert body["amount_human"] == "1MB" and body["late"] is False
    assert [d["amount"] for d in body["debits"]] == [1_048_576]
    duplicate = is_problem(api.call("POST", "/v1/usage", json=USAGE), 409)
    assert "ev-1" in duplicate["detail"]
    is_problem(api.call("POST", "/v1/usage", json={**USAGE, "event_id": "x", "line": "zz"}), 404)

    rows = [{**USAGE, "event_id": f"b-{i}", "amount": 1000} for i in range(3)]
    rows += [USAGE,                                               # already counted
             {**USAGE, "event_id": "b-9", "line": "nobody"},      # unknown line
             {**USAGE, "event_id": "b-10", "at": "2026-01-02T00:00"},  # no offset
             {**USAGE, "event_id": "b-11", "at": "2025-12-01T00:00Z",
              "received_at": "2025-12-01T00:00Z"}]                # before the line
    batch = api.call("POST", "/v1/usage/batch", json={"rows": rows})
    assert batch.status_code == 200, batch.text
    out = batch.json()
    assert (out["rows"], out["accepted"], out["duplicates"], out["rejected"]) == (7, 3, 1, 3)
    assert [r["row"] for r in out["rejects"]] == [4, 5, 6]
    assert out["rejects"][0]["reason"].startswith("line: unknown line")
    balance = api.call("GET", "/v1/lines/a1/balance", params={"at": AT}).json()
    assert balance["cycle"]["used"]["data"] == 1_048_576 + 3000
    invalid = is_problem(api.call("POST", "/v1/usage/batch", json={"rows": [
        {**USAGE, "amount": -1}]}), 422)
    assert invalid["errors"][0]["field"] == "body.rows.0.amount"
    is_problem(api.call("POST", "/v1/usage/batch", json={"rows": []}), 422)


def test_idempotency_key_replays_the_first_response(api: Api):
    body = {"name": "idem", "cycle_day": 3, "timezone": "UTC"}
    first = api.call("POST", "/v1/accounts", json=body, headers={"Idempotency-Key": "k1"})
    again = api.call("POST", "/v1/accounts", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # Without the key the same request is a new one, and refused as a duplicate name.
    is_problem(api.call("POST", "/v1/accounts", json=body), 409)
    # The same key with another body is refused; another API key's "k1" is its own.
    is_problem(api.call("POST", "/v1/accounts", json={**body, "cycle_day": 4},
                        headers={"Idempotency-Key": "k1"}), 422)
    # A refusal is replayed too, and each usage event is counted once.
    usage = {"headers": {"Idempotency-Key": "u1"}, "json": USAGE}
    assert api.call("POST", "/v1/usage", **usage).status_code == 201
    replay = api.call("POST", "/v1/usage", **usage)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    top = {"headers": {"Idempotency-Key": "t1"},
           "json": {"amount": 1_000_000, "valid_days": 7, "at": AT}}
    refs = {api.call("POST", "/v1/lines/a1/top-ups", **top).json()["ref"] for _ in range(3)}
    assert len(refs) == 1
    statement = api.call("GET", "/v1/lines/a1/statement", params={"at": AT}).json()
    assert sum(1 for e in statement["entries"] if e["kind"] == "grant"
               and e["ref"] in refs) == 1
    is_problem(api.call("POST", "/v1/accounts", json=body,
                        headers={"Idempotency-Key": "k" * 201}), 422)


def test_authentication(api: Api):
    is_problem(api.call("GET", "/v1/plans", None), 401)
    bad = api.call("GET", "/v1/plans", None, headers={"Authorization": "Bearer co_nope"})
    assert is_problem(bad, 401) and bad.headers["WWW-Authenticate"] == "Bearer"
    info, token = api_keys.create_key(UnitOfWork(api.engine), "subscriber", JAN, "acme")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.call("GET", "/v1/lines/a1", None, headers=headers).status_code == 200
    api_keys.revoke_key(UnitOfWork(api.engine), info["id"], JAN)
    is_problem(api.call("GET", "/v1/lines/a1", None, headers=headers), 401)


def test_problem_shapes(api: Api):
    invalid = is_problem(api.call("POST", "/v1/accounts", json={"name": "", "cycle_day": "x"}),
                         422)
    fields = {e["field"] for e in invalid["errors"]}
    assert {"body.name", "body.cycle_day", "body.timezone"} <= fields
    assert all(e["message"] and e["type"] for e in invalid["errors"])
    is_problem(api.call("POST", "/v1/accounts", content=b"{not json",
                        headers={"content-type": "application/json"}), 422)
    is_problem(api.call("GET", "/v1/nothing-here"), 404)
    is_problem(api.call("DELETE", "/v1/plans"), 405)
    is_problem(api.call("GET", "/v1/lines/a1/balance", params={"at": "yesterday"}), 422)
    before = is_problem(api.call("GET", "/v1/lines/a1/balance",
                                 params={"at": "2025-01-01T00:00Z"}), 422)
    assert "before line" in before["detail"]


def test_idempotency_key_in_progress_and_released(api: Api):
    # A claim left by a request still running: a retry is told to wait, not run.
    who = api_keys.authenticate(UnitOfWork(api.engine), api.tokens["operator"])
    body = {"name": "busy", "cycle_day": 3, "timezone": "UTC"}
    digest = idempotency.request_hash({**body, "pool_plan": None, "at": None})
    assert idempotency.claim(UnitOfWork(api.engine), who.key_id, "POST /v1/accounts", "k9", digest,
                             datetime.now(UTC)) is None
    busy = is_problem(api.call("POST", "/v1/accounts", json=body,
                               headers={"Idempotency-Key": "k9"}), 409)
    assert "in progress" in busy["detail"]
    assert api.call("GET", "/v1/accounts/busy").status_code == 404
    idempotency.release(UnitOfWork(api.engine), who.key_id, "POST /v1/accounts", "k9")
    assert api.call("POST", "/v1/accounts", json=body,
                    headers={"Idempotency-Key": "k9"}).status_code == 201
