"""Creating POSTs under an `Idempotency-Key`: the first response is replayed.

`respond` runs the action once per (API key, method and path, Idempotency-Key)
and stores its response, success or refusal, through services.access.idempotency
(which finds it by a SHA-256 of the method and path: a path of any length the
server accepts is its own route, never cut to fit a column); a
retry gets the stored status and body back with `Idempotent-Replayed: true`,
one that comes while the first still runs gets 409. Without the header the
action simply runs. A secret shown once (an eSIM confirmation code) is
stripped by `redact` before the response is stored, so a replay lacks it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from carryover.api.problems import PROBLEM_JSON, problem_body, service_status
from carryover.services.access import idempotency
from carryover.services.access.api_keys import Principal
from carryover.services.errors import ServiceError
from carryover.store.uow import UnitOfWork

# Stored as it is (api_tables.idempotency_keys.key, String(200)): longer is a 422 on
# header.Idempotency-Key before anything runs.
MAX_KEY = 200
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=MAX_KEY,
    description="Retry-safe creation: a repeat with this key replays the first response.")]


def _response(status: int, body: Any, replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type=PROBLEM_JSON if status >= 400 else None)


def respond(request: Request, eng: Engine, who: Principal, key: str | None, payload: Any,
            action: Callable[[], Any], status: int = 201,
            redact: Callable[[Any], Any] | None = None) -> JSONResponse:
    """Run `action` once per key; `redact` strips what must not be stored for replays."""
    if key is None:
        return _response(status, jsonable_encoder(action()))
    route = f"{request.method} {request.url.path}"
    digest = idempotency.request_hash(jsonable_encoder(payload))
    try:
        hit = idempotency.claim(UnitOfWork(eng), who.key_id, route, key, digest, datetime.now(UTC))
    except ServiceError as exc:  # reused with another body, or still running
        return _response(service_status(exc), problem_body(service_status(exc), str(exc)))
    if hit is not None:
        return _response(*hit, replayed=True)
    try:
        body = jsonable_encoder(action())
    except ServiceError as exc:
        status = service_status(exc)
        body = problem_body(status, str(exc))
    except BaseException:
        idempotency.release(UnitOfWork(eng), who.key_id, route, key)
        raise
    stored = redact(body) if redact is not None and status < 400 else body
    idempotency.complete(UnitOfWork(eng), who.key_id, route, key, status, stored)
    return _response(status, body)
