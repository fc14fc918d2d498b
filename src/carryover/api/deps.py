"""Dependencies every route shares: the app object, the engine, and the caller.

`Caller` authenticates the `Authorization: Bearer <token>` header (401 without
a valid key) and applies the key's rate limit (429 with Retry-After); `Operator`
also refuses subscriber keys (403). The limit is a token bucket per key, per
worker process: `api_rate_per_second` refills it, `api_rate_burst` is its size.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from carryover.api.problems import ApiProblem
from carryover.runtime import Carryover
from carryover.services import api_keys
from carryover.services.api_keys import Principal

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


def carry(request: Request) -> Carryover:
    return request.app.state.carry


def engine(request: Request) -> Engine:
    return request.app.state.carry.open()


CarryDep = Annotated[Carryover, Depends(carry)]
EngineDep = Annotated[Engine, Depends(engine)]


def caller(request: Request, eng: EngineDep,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
           ) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiProblem(401, "send an API key as `Authorization: Bearer <token>`", challenge)
    found = api_keys.authenticate(eng, credentials.credentials)
    if found is None:
        raise ApiProblem(401, "the API key is unknown or revoked", challenge)
    wait = request.app.state.limiter.wait_for(found.key_id)
    if wait > 0:
        raise ApiProblem(429, "rate limit of this API key exceeded",
                         {"Retry-After": str(max(1, math.ceil(wait)))})
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(caller)]


def operator(who: Caller) -> Principal:
    if not who.operator:
        raise ApiProblem(403, "this operation needs an operator key")
    return who


Operator = Annotated[Principal, Depends(operator)]
