"""Idempotent creation: the first response to a POST with an `Idempotency-Key` is kept.

A request with a new key first claims it (a row marked in progress, committed
at once), then runs, then stores its response, success or refusal, on that
row. A retry with the same key (same API key, same route) gets the stored
response back and nothing is done twice; a retry that arrives while the first
is still running is told so (409) instead of running alongside it. The key is
bound to the request body's hash: the same key with another body is refused,
since replaying an answer to a different question would be a lie. If the
first request crashes, its claim is released and a retry runs again.

The route is the method and the concrete path ("POST /v1/lines/a1/top-ups"). The
client picks the path, of any length and in any script, so a row is found by
`route_hash`, the SHA-256 of the route: fixed-length, and different for any two
routes. The route itself is stored beside it as text, for reading.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from carryover.services.access.ports import IdempotencyUnit
from carryover.services.errors import Conflict, ServiceError


class KeyReused(ServiceError):
    """The Idempotency-Key was first used with another request body."""


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def route_hash(route: str) -> str:
    """What identifies `route` in the store: the SHA-256 hex of its UTF-8."""
    return hashlib.sha256(route.encode()).hexdigest()


def claim(uow: IdempotencyUnit, api_key_id: str, route: str, key: str, body_hash: str,
          at: datetime) -> tuple[int, Any] | None:
    """None when the key is now ours to run; else the first (status, body) to replay."""
    with uow:
        repo = uow.idempotency
        if repo.claim(api_key_id=api_key_id, route_hash=route_hash(route), route=route,
                      key=key, request_hash=body_hash, created_at=at):
            uow.commit()
            return None
        row = repo.stored_response(api_key_id, route_hash(route), key)
    if row.request_hash != body_hash:
        raise KeyReused(f"Idempotency-Key {key!r} was first used with a different request")
    if row.status == 0:
        raise Conflict(f"a request with Idempotency-Key {key!r} is still in progress; "
                       "retry later")
    return row.status, row.body


def complete(uow: IdempotencyUnit, api_key_id: str, route: str, key: str, status: int,
             body: Any) -> None:
    with uow:
        uow.idempotency.complete(api_key_id, route_hash(route), key, status, body)
        uow.commit()


def release(uow: IdempotencyUnit, api_key_id: str, route: str, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so a retry can run."""
    with uow:
        uow.idempotency.release(api_key_id, route_hash(route), key)
        uow.commit()
