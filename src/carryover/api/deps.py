"""Dependencies every route shares: the app object, the engine, and the caller.

`Caller` authenticates the `Authorization: Bearer <token>` header (401 without
a valid key) and applies the key's rate limit (429 with Retry-After, the
Carryover's limiter: services.access.rate_limits); `Operator` also refuses subscriber
keys (403).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from carryover.api.problems import ApiProblem
from carryover.runtime import Carryover
from carryover.services.access import api_keys
from carryover.services.access.api_keys import Principal
from carryover.services.access.rate_limits import DatabaseRateLimiter, RateLimiter
from carryover.services.ledger.operations import Actor
from carryover.store.uow import UnitOfWork

bearer = HTTPBearer(auto_error=False, description="An API key: `carryover apikey create`.")


# The dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency
# in the thread pool, a hop (and a GIL hand-over) per dependency per request.
async def carry(request: Request) -> Carryover:
    return request.app.state.carry


async def engine(request: Request) -> Engine:
    # Opened (schema checked) once per process, by `serve` before it listens.
    return request.app.state.carry.open()


CarryDep = Annotated[Carryover, Depends(carry)]
EngineDep = Annotated[Engine, Depends(engine)]


async def caller(request: Request, eng: EngineDep,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                 ) -> Principal:
    # A coroutine, so that a key the cache knows and an in-process limit cost no thread
    # hop; the database is only asked from the thread pool.
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiProblem(401, "send an API key as `Authorization: Bearer <token>`", challenge)
    cache = request.app.state.carry.key_cache
    found = api_keys.remembered(credentials.credentials, cache)
    if found is None:
        found = await run_in_threadpool(api_keys.authenticate, UnitOfWork(eng),
                                        credentials.credentials, cache)
    if found is None:
        raise ApiProblem(401, "the API key is unknown or revoked", challenge)
    wait = await take_token(request.app.state.carry.limiter, found.key_id)
    if wait > 0:
        raise ApiProblem(429, "rate limit of this API key exceeded",
                         {"Retry-After": str(max(1, math.ceil(wait)))})
    request.state.principal = found
    return found


async def take_token(limiter: RateLimiter | DatabaseRateLimiter, key_id: str) -> float:
    """`limiter.wait_for(key_id)`, from the thread pool only when it asks the database."""
    if isinstance(limiter, RateLimiter) or limiter.rate <= 0:
        return limiter.wait_for(key_id)  # in memory
    return await run_in_threadpool(limiter.wait_for, key_id)


Caller = Annotated[Principal, Depends(caller)]


async def operator(who: Caller) -> Principal:
    if not who.operator:
        raise ApiProblem(403, "this operation needs an operator key")
    return who


Operator = Annotated[Principal, Depends(operator)]


def actor(who: Principal) -> Actor:
    """The caller as the actor its changes are recorded with (docs/security.md)."""
    return Actor(who.key_id, who.operator)
