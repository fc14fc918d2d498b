"""The Nchf hot path: the three charging operations answered without the router.

A packet core sends hundreds of requests a second, and for each one FastAPI's
route matching over every route of the API, its dependency solving and its
exception middleware cost about half of the request's CPU in the worker
(measured with py-spy under bench/nchf_load.py). This ASGI middleware answers
the ordinary case of the routes in api/nchf.py itself, with the same code
they use (api.nchf.answer, .created, .updated, .released):

- a POST to `/chargingdata`, `/chargingdata/{ref}/update` or `.../release`;
- an operator key this process checked within `api_key_cache_seconds`;
- a rate limit that lets the request through (in memory, or none);
- a body that validates as a ChargingDataRequest (pydantic, straight from the JSON).

Anything else is handed to the FastAPI route with the body already read, so
there is one place that answers errors (401, 403, 429, 400 with invalidParams).
The request is counted under its route's template by ops.Observe, which wraps
this middleware.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.requests import Request

from carryover.api import nchf
from carryover.api.deps import RateLimiter
from carryover.services import api_keys
from carryover.services.charging import ChargingOp

_PATH = re.compile(re.escape(nchf.PREFIX) + r"/chargingdata(?:/([^/]+)/(update|release))?")


class NchfFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._routes: dict[str, Any] | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = (_PATH.fullmatch(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST" else None)
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        app = scope["app"]
        response = None
        if await _operator(app, scope) is not None:
            response = await self._answer(app, scope, match, body)
        if response is None:  # not the ordinary case: the route answers it
            await self.app(scope, _replay(body), send)
            return
        scope["route"] = self._route(app, match)  # Observe counts it under its template
        app.state.nchf_fast_answered = getattr(app.state, "nchf_fast_answered", 0) + 1
        await response(scope, _replay(b""), send)

    async def _answer(self, app: Any, scope: dict, match: re.Match, body: bytes):
        try:
            model = nchf.ChargingDataRequest.model_validate_json(body)
        except ValidationError:
            return None
        ref, kind = match[1], match[2] or "create"
        try:
            op = ChargingOp(kind, nchf.charging_request(model, kind == "create"), ref)
        except nchf.BadRequest:
            return None
        if kind == "create":
            url = str(Request(scope).url)
            return await nchf.answer(app, lambda: op,
                                     lambda result: nchf.created(result, model, url))
        if kind == "update":
            return await nchf.answer(app, lambda: op, lambda result: nchf.updated(result, model))
        return await nchf.answer(app, lambda: op, nchf.released)

    def _route(self, app: Any, match: re.Match) -> Any:
        if self._routes is None:
            self._routes = {route.name: route for route in app.routes
                            if getattr(route, "path", "").startswith(nchf.PREFIX)}
        return self._routes.get(match[2] or "create")


async def _operator(app: Any, scope: dict) -> api_keys.Principal | None:
    """The caller when it is an operator the key cache knows and its limit allows the
    request; None otherwise (the route's dependencies then decide)."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                token = credentials.strip()
            break
    if not token:
        return None
    who = api_keys.remembered(token, app.state.key_cache)
    if who is None or not who.operator:
        return None
    limiter = app.state.limiter
    if isinstance(limiter, RateLimiter) or limiter.rate <= 0:
        wait = limiter.wait_for(who.key_id)
    else:
        wait = await run_in_threadpool(limiter.wait_for, who.key_id)
    return who if wait <= 0 else None


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes):
    """A `receive` that gives the body once more, then waits like a live connection."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}
    return receive
