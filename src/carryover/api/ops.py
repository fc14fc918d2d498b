"""Operations: `/healthz`, `/readyz`, `/metrics`, and the request size limit.

- `/healthz`: the process answers (no database call).
- `/readyz`: the database is reachable and at this code's schema; 503 otherwise.
- `/metrics`: Prometheus text format: requests by method, route template and
  status, and their latencies; usage events rated and top-ups added through
  this process; and, read from the database at scrape time
  (services.ops.business_metrics), rollover deposited, lines throttled and lines
  blocked now (exact), lines without data (an older approximation), pending
  webhook deliveries and the outbox lag.
  Unauthenticated, like the probes: keep the port on a private network
  (docs/api.md).
- `BodyLimit`: a body larger than `api_max_body_bytes` is refused with 413
  before the app reads it (by Content-Length, or by counting a chunked body).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from carryover.api.problems import problem
from carryover.services.ops import business_metrics
from carryover.store.schema import current_revision, head_revision
from carryover.store.uow import UnitOfWork

router = APIRouter(tags=["operations"])
log = logging.getLogger("carryover.api")


class BusinessCollector(Collector):
    """Gauges computed from the database at each scrape; `up` is 0 when it cannot be read."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("carryover_business_metrics_up",
                               "1 when the business gauges could be read from the database.")
        try:
            found = business_metrics.figures(UnitOfWork(self.engine()))
        except Exception:  # a scrape must not fail: the reason goes to the server log
            log.exception("business metrics could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deposited = GaugeMetricFamily(
            "carryover_rollover_deposited", "Rollover deposited since the beginning "
            "(sum of rollover_in entries): bytes for data, seconds for voice, a count for SMS.",
            labels=["unit"])
        for unit, total in sorted(found.rollover_deposited.items()):
            deposited.add_metric([unit], total)
        yield deposited
        yield GaugeMetricFamily(
            "carryover_lines_without_data", "Lines with open data buckets and none with "
            "anything left, as of their last rated event (an approximation of throttled or "
            "blocked lines; docs/api.md).", value=found.lines_without_data)
        yield GaugeMetricFamily(
            "carryover_lines_throttled", "Lines throttled now: their latest throttled or "
            "blocked notification of the current cycle is throttled and they have no usable "
            "data (docs/api.md).", value=found.lines_throttled)
        yield GaugeMetricFamily(
            "carryover_lines_blocked", "Lines blocked now: their latest throttled or blocked "
            "notification of the current cycle is blocked and they have no usable data "
            "(docs/api.md).", value=found.lines_blocked)
        yield GaugeMetricFamily(
            "carryover_webhook_deliveries_pending", "Webhook deliveries not yet delivered "
            "and not dead (to enabled endpoints).", value=found.webhook_deliveries_pending)
        yield GaugeMetricFamily(
            "carryover_outbox_lag_seconds", "Age of the oldest pending webhook delivery "
            "since its notification was written; 0 when none.", value=found.outbox_lag_seconds)


class Metrics:
    """One registry per app, so apps built by tests do not share counters.

    `engine` opens the database for the gauges read at scrape time; without it
    only the process's own counters are exposed.
    """

    def __init__(self, engine: Callable[[], Engine] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("carryover_http_requests_total", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("carryover_http_request_seconds", "HTTP request latency.",
                                 ["method", "route"], registry=self.registry)
        self.usage_rated = Counter(
            "carryover_usage_events_rated_total",
            "Usage events rated through the API (duplicates and rejects not counted).",
            ["route"], registry=self.registry)
        self.top_ups = Counter("carryover_top_ups_total", "Top-ups added through the API.",
                               ["unit"], registry=self.registry)
        self.nchf_batch = Histogram(
            "carryover_nchf_batch_requests",
            "Nchf requests answered per transaction (group commit, nchf_max_batch).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.nchf_batch_seconds = Histogram(
            "carryover_nchf_batch_seconds", "Time to answer and commit one Nchf batch.",
            registry=self.registry)
        for route in ("one", "batch"):
            self.usage_rated.labels(route)
        if engine is not None:
            self.registry.register(BusinessCollector(engine))


class Observe:
    """ASGI middleware: count each request by method, route template and status, and
    time it. Plain ASGI rather than an `@app.middleware("http")` function: Starlette's
    BaseHTTPMiddleware runs every request through an extra task and stream, which
    cost a fifth of an Nchf request's CPU."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # unless a response starts: an exception is a 500 to the client

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status[0])).inc()
            self.metrics.latency.labels(method, template).observe(
                time.perf_counter() - started)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database is reachable and migrated",
            responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Any:
    def check() -> str | None:
        engine = request.app.state.carry.open()
        return current_revision(engine)
    try:
        revision = await run_in_threadpool(check)
    except Exception:  # any failure means not ready; the reason stays in the server log
        return problem(503, "the database is not reachable")
    if revision != head_revision():
        return problem(503, f"the database is at schema {revision}, not {head_revision()}")
    return {"status": "ready", "schema": revision}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.carry.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


class BodyLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit first, then hand it on.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body: bytes | None = b"".join(chunks)

        async def replay() -> dict:
            # The body once; then the client's own messages (http.disconnect), which a
            # streaming response waits for: answering "http.request" forever without
            # awaiting anything spun the event loop and hung every file response.
            nonlocal body
            if body is None:
                return await receive()
            out, body = body, None
            return {"type": "http.request", "body": out, "more_body": False}
        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = problem(413, f"the request body is larger than {self.limit} bytes")
        await response(scope, receive, send)
