"""Migration carryover_0017 on both backends: idempotency keys are found by `route_hash`.

Responses the previous schema stored (route in the primary key) come through with
the hash of their route, and a retry of theirs is still a replay: the same status
and body, nothing run again; one in progress is still in progress. A route longer
than the previous VARCHAR(200) can then be stored and replayed on PostgreSQL too.
The downgrade puts the route back in the key, keeps the responses it can hold and
forgets those of routes over 200 characters.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from carryover.services.access import api_keys, idempotency
from carryover.services.errors import Conflict
from carryover.store.engine import make_engine
from carryover.store.schema import downgrade, upgrade
from carryover.store.uow import UnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
PREVIOUS = "carryover_0016"
TOP_UP = "POST /v1/lines/a1/top-ups"
ACCOUNTS = "POST /v1/accounts"
LONG = "POST /v1/lines/" + "ℓ" * 300 + "/plan-change"
DIGEST = idempotency.request_hash({"amount": 1})


def shape(engine) -> tuple[set[str], list[str]]:
    with engine.connect() as conn:
        found = inspect(conn)
        return ({c["name"] for c in found.get_columns("idempotency_keys")},
                found.get_pk_constraint("idempotency_keys")["constrained_columns"])


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT route, key, status FROM idempotency_keys ORDER BY route, key"))]


def test_responses_of_the_previous_schema_replay_and_long_routes_fit(db_url):
    engine = make_engine(db_url)
    upgrade(engine, "head")
    key_id = api_keys.create_key(UnitOfWork(engine), "operator", JAN)[0]["id"]
    downgrade(engine, PREVIOUS)
    assert shape(engine) == ({"api_key_id", "route", "key", "request_hash", "status",
                              "body", "created_at"}, ["api_key_id", "route", "key"])
    with engine.begin() as conn:  # as the previous code stored them
        for route, key, status, body in ((TOP_UP, "t1", 201, '{"ref": "topup-1"}'),
                                         (TOP_UP, "t2", 0, "{}"),
                                         (ACCOUNTS, "t1", 409, '{"status": 409}')):
            conn.execute(text(
                "INSERT INTO idempotency_keys (api_key_id, route, key, request_hash, status, "
                "body, created_at) VALUES (:k, :r, :key, :h, :s, :b, :at)"),
                {"k": key_id, "r": route, "key": key, "h": DIGEST, "s": status, "b": body,
                 "at": JAN})

    upgrade(engine, "head")

    columns, primary = shape(engine)
    assert "route_hash" in columns and primary == ["api_key_id", "route_hash", "key"]
    with engine.connect() as conn:
        hashes = dict(conn.execute(text("SELECT route, route_hash FROM idempotency_keys")).all())
    assert hashes == {TOP_UP: idempotency.route_hash(TOP_UP),
                      ACCOUNTS: idempotency.route_hash(ACCOUNTS)}
    replay = idempotency.claim(UnitOfWork(engine), key_id, TOP_UP, "t1", DIGEST, JAN)
    assert replay == (201, {"ref": "topup-1"})
    assert idempotency.claim(UnitOfWork(engine), key_id, ACCOUNTS, "t1", DIGEST, JAN) == (
        409, {"status": 409})
    with pytest.raises(Conflict, match="still in progress"):
        idempotency.claim(UnitOfWork(engine), key_id, TOP_UP, "t2", DIGEST, JAN)
    # A route of any length is stored, and replayed; its neighbour is its own.
    assert idempotency.claim(UnitOfWork(engine), key_id, LONG, "t1", DIGEST, JAN) is None
    idempotency.complete(UnitOfWork(engine), key_id, LONG, "t1", 404, {"status": 404})
    assert idempotency.claim(UnitOfWork(engine), key_id, LONG, "t1", DIGEST, JAN) == (
        404, {"status": 404})
    assert idempotency.claim(UnitOfWork(engine), key_id, LONG + "x", "t1", DIGEST,
                             JAN) is None
    assert [(r, k) for r, k, _ in stored(engine) if len(r) > 200] == [
        (LONG, "t1"), (LONG + "x", "t1")]

    downgrade(engine, PREVIOUS)

    assert shape(engine) == ({"api_key_id", "route", "key", "request_hash", "status",
                              "body", "created_at"}, ["api_key_id", "route", "key"])
    assert stored(engine) == [(ACCOUNTS, "t1", 409), (TOP_UP, "t1", 201), (TOP_UP, "t2", 0)]
    upgrade(engine, "head")
    assert idempotency.claim(UnitOfWork(engine), key_id, TOP_UP, "t1", DIGEST, JAN) == (
        201, {"ref": "topup-1"})
