"""The Nchf hot path: the three charging operations answered without the router.

A packet core sends hundreds of requests a second, and for each one FastAPI's
route matching over every route of the API, its dependency solving and its
exception middleware cost about half of the request's CPU in the worker
(measured with py-spy under bench/nchf_load.py). This ASGI middleware answers
the ordinary case of the routes in api/nchf/routes.py itself, with the same code
they use (routes.answer, .created, .updated, .released):

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

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request

from carryover.api.deps import take_token
from carryover.api.nchf import routes
from carryover.services.access import api_keys
from carryover.services.charging.model import ChargingOp

# The media types FastAPI reads as a JSON body (fastapi.routing).
_JSON = re.compile(r"application/(?:[\w.+-]+\+)?json")
_PATH = re.compile(re.escape(routes.PREFIX) + r"/chargingdata(?:/([^/]+)/(update|release))?")


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
        # Observe counts it under its template, also if answering fails (a 500).
        scope["route"] = self._route(app, match)
        op = _ordinary(app, scope, match, body)
        who = op and await _operator(app, scope)
        if op is None or who is None:  # not the ordinary case: the route answers it
            await self.app(scope, _replay(body), send)
            return
        model, op = op
        if op.kind == "create":
            url = str(Request(scope).url)
            response = await routes.answer(app, lambda: op,
                                         lambda result: routes.created(result, model, url))
        elif op.kind == "update":
            response = await routes.answer(app, lambda: op,
                                         lambda result: routes.updated(result, model))
        else:
            response = await routes.answer(app, lambda: op, routes.released)
        await response(scope, _replay(b""), send)

    def _route(self, app: Any, match: re.Match) -> Any:
        if self._routes is None:
            self._routes = {route.name: route for route in app.routes
                            if getattr(route, "path", "").startswith(routes.PREFIX)}
        return self._routes.get(match[2] or "create")


def _ordinary(app: Any, scope: dict, match: re.Match, body: bytes):
    """(the parsed body, the op) when the request is one the route would answer from
    the body alone, with JSON as FastAPI reads it; None otherwise."""
    kind = _header(scope, b"content-type")
    if kind is None or not _JSON.fullmatch(kind.split(";", 1)[0].strip().lower()):
        return None  # whether FastAPI reads it as JSON is the route's to decide
    try:
        model = routes.ChargingDataRequest.model_validate_json(body)
    except ValidationError:
        return None
    ref, kind = match[1], match[2] or "create"
    try:
        return model, ChargingOp(kind, routes.charging_request(model, kind == "create"), ref)
    except routes.BadRequest:
        return None


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _operator(app: Any, scope: dict) -> api_keys.Principal | None:
    """The caller when it is an operator the key cache knows and its limit allows the
    request; None otherwise (the route's dependencies then decide). Asked only for a
    request the route would take too, so the limit is charged once either way."""
    scheme, token = get_authorization_scheme_param(_header(scope, b"authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    who = api_keys.remembered(token, app.state.carry.key_cache)
    if who is None or not who.operator:
        return None
    return who if await take_token(app.state.carry.limiter, who.key_id) <= 0 else None


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
