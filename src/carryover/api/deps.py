"""Dependencies every route shares: the app object, the engine, and the caller.

`Caller` authenticates the `Authorization: Bearer <token>` header (401 without
a valid key) and applies the key's rate limit (429 with Retry-After); `Operator`
also refuses subscriber keys (403). The limit is a token bucket per key:
`api_rate_per_second` refills it, `api_rate_burst` is its size. `make_limiter`
picks where it lives (setting `api_rate_limit_store`): in this process
(`RateLimiter`, for a single worker), or in the database (`DatabaseRateLimiter`,
GCRA, services.rate_limits), so several worker processes or hosts share one
budget per key instead of each allowing the whole limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from carryover.api.problems import ApiProblem
from carryover.runtime import Carryover
from carryover.services import api_keys, rate_limits
from carryover.services.api_keys import Principal
from carryover.services.ledger_ops import Actor
from carryover.settings import Settings
from carryover.store.uow import UnitOfWork

bearer = HTTPBearer(auto_error=False, description="An API key: `carryover apikey create`.")


class RateLimiter:
    """A token bucket per key: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str, now: float | None = None) -> float:
        """Take a token: 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class DatabaseRateLimiter:
    """The same limit for every process on the database: one GCRA row per key.

    `now` (seconds since the Unix epoch) is for tests; the default is the wall
    clock, which every process and host shares, unlike time.monotonic()."""

    def __init__(self, rate: float, burst: int, engine: Callable[[], Engine]) -> None:
        self.rate, self.burst, self.engine = rate, burst, engine
        self.interval = rate_limits.interval_us(rate) if rate > 0 else 0

    def wait_for(self, key: str, now: float | None = None) -> float:
        """Take a cell: 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now_us = time.time_ns() // 1000 if now is None else round(now * rate_limits.US)
        wait = rate_limits.admit(UnitOfWork(self.engine()), key, now_us, self.interval,
                                 self.burst)
        return wait / rate_limits.US


def make_limiter(settings: Settings,
                 engine: Callable[[], Engine]) -> RateLimiter | DatabaseRateLimiter:
    """The limiter `api_rate_limit_store` asks for; `auto` is this process's own.

    `carryover serve --workers N` (N > 1) turns `auto` into `database` for its workers."""
    if settings.api_rate_limit_store == "database":
        return DatabaseRateLimiter(settings.api_rate_per_second, settings.api_rate_burst, engine)
    return RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)


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
