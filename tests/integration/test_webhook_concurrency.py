"""Issue 22 item 7: a slow endpoint delays nobody else, and no delivery is sent twice at once.

Loopback receivers with small timeouts, on SQLite and PostgreSQL: a slow
endpoint holds only its own lane; two delivery loops side by side never send a
row while another attempt at it may still be running, even when the attempts
of one endpoint take far longer in all than one lease; `carryover serve` runs
one delivery loop per deployment (the delivery lock).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import delivery as webhook_delivery
from carryover.services.notify import webhooks
from carryover.store.uow import UnitOfWork
from tests.integration.test_webhooks import GB, JAN, use_up, world
from tests.loopback import serving


class Timed:
    """Answers 204 after `delay` seconds; records when each event arrived and overlaps."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.events: list[tuple[float, str]] = []
        self.in_flight: Counter[str] = Counter()
        self.overlaps = 0
        self.guard = threading.Lock()

    async def hook(self, request: Request) -> Response:
        event = request.headers["x-carryover-event"]
        with self.guard:
            self.overlaps += self.in_flight[event] > 0
            self.in_flight[event] += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            with self.guard:
                self.in_flight[event] -= 1
        self.events.append((time.monotonic(), event))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    def counts(self) -> Counter[str]:
        return Counter(e for _, e in self.events)


def test_a_slow_endpoint_does_not_delay_a_healthy_one(db_url):
    carry, engine = world(db_url, webhook_timeout=5, webhook_concurrency=4)
    slow, healthy = Timed(delay=0.8), Timed()
    with serving(slow.app()) as slow_base, serving(healthy.app()) as healthy_base:
        # The slow endpoint first: serial delivery in id order reached it first.
        webhooks.add_endpoint(UnitOfWork(engine), slow_base + "/hook", None, JAN,
                              allow_private=True)
        webhooks.add_endpoint(UnitOfWork(engine), healthy_base + "/hook", None, JAN,
                              allow_private=True)
        use_up(engine)  # four notifications for each endpoint
        started = time.monotonic()
        done = webhooks.deliver_once(UnitOfWork(engine), carry.settings)
    assert done == {"delivered": 8, "retrying": 0, "dead": 0}
    assert len(healthy.events) == 4 and len(slow.events) == 4
    healthy_took = max(t for t, _ in healthy.events) - started
    slow_took = max(t for t, _ in slow.events) - started
    assert slow_took >= 4 * 0.8  # one POST at a time to the slow endpoint, in order
    assert healthy_took < 1.5, healthy_took  # serially it waited for >= 3 slow answers


def test_the_loop_serves_new_work_while_a_lane_is_still_busy(db_url):
    carry, engine = world(db_url, webhook_timeout=5)
    slow, healthy = Timed(delay=0.6), Timed()
    with serving(slow.app()) as slow_base, serving(healthy.app()) as healthy_base:
        webhooks.add_endpoint(UnitOfWork(engine), slow_base + "/hook", None, JAN,
                              allow_private=True)
        webhooks.add_endpoint(UnitOfWork(engine), healthy_base + "/hook", None, JAN,
                              allow_private=True)
        use_up(engine)
        loop = threading.Thread(target=webhooks.run, args=(UnitOfWork(engine), carry.settings, 120))
        loop.start()
        deadline = time.monotonic() + 10
        while len(healthy.events) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        # A later notification, on another line, while the slow lane is mid-backlog.
        provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", JAN,
                                 "tmobile-data-stash-10gb", line_id="u")
        written = time.monotonic()
        at = JAN + timedelta(days=3)
        ledger_ops.record_usage(UnitOfWork(engine), "u", 6 * GB, at, at, "u1")
        while len(healthy.events) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        slow_busy = len(slow.events) < 4
        loop.join(timeout=20)
    assert len(healthy.events) == 5
    assert healthy.events[-1][0] - written < 1.5
    assert slow_busy  # it arrived while the slow endpoint's first four were still going
    assert slow.counts() == Counter({e: 1 for e in slow.counts()}) and len(slow.events) == 5


def test_two_loops_never_send_a_row_twice(db_url, monkeypatch):
    # Each attempt on the slow endpoint takes 0.3 s, a lease lasts 1 + 0.2 s,
    # and the slow endpoint's eight rows take 2.4 s in all: a lease taken over a
    # batch of rows (the old design) would run out under half of them and the
    # other loop would send them again; a lease per attempt never does.
    monkeypatch.setattr(webhook_delivery, "LEASE_MARGIN", 0.2)
    carry, engine = world(db_url, webhook_timeout=1.0)
    slow, fast = Timed(delay=0.3), Timed()
    with serving(slow.app()) as slow_base, serving(fast.app()) as fast_base:
        webhooks.add_endpoint(UnitOfWork(engine), slow_base + "/hook", None, JAN,
                              allow_private=True)
        webhooks.add_endpoint(UnitOfWork(engine), fast_base + "/hook", None, JAN,
                              allow_private=True)
        use_up(engine)
        provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", JAN,
                                 "tmobile-data-stash-10gb", line_id="u")
        at = JAN + timedelta(days=3)
        for k, amount in enumerate((5, 3, 2, 1)):
            ledger_ops.record_usage(UnitOfWork(engine), "u", amount * GB, at, at, f"u{k}")
        results: list[dict] = []
        loops = [threading.Thread(target=lambda: results.append(
            webhooks.run(UnitOfWork(engine), carry.settings, 60))) for _ in range(2)]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join(timeout=30)
    assert slow.overlaps == 0  # never two attempts at one row at once
    assert sum(r["retrying"] for r in results) == 0  # no attempt failed (and was retried)
    assert len(slow.events) == 8 and len(fast.events) == 8
    assert set(slow.counts().values()) == {1} and set(fast.counts().values()) == {1}
    assert sum(r["delivered"] for r in results) == 16
    assert all(e["delivered"] == 8 for e in webhooks.list_endpoints(UnitOfWork(engine)))


def test_one_delivery_lock_per_deployment(db_url):
    _, engine = world(db_url)
    first = webhook_delivery.try_lock(UnitOfWork(engine))
    assert first is not None
    try:
        assert webhook_delivery.try_lock(UnitOfWork(engine)) is None
    finally:
        first.release()
    again = webhook_delivery.try_lock(UnitOfWork(engine))
    assert again is not None
    again.release()


def test_serve_workers_run_one_delivery_loop(db_url, monkeypatch):
    from fastapi.testclient import TestClient

    from carryover.api.app import create_app

    started: list[int] = []
    real_run = webhook_delivery.Loop.run

    async def counted(self, passes=None):
        started.append(1)
        return await real_run(self, passes)

    monkeypatch.setattr(webhook_delivery.Loop, "run", counted)
    carry, engine = world(db_url)
    receiver = Timed()
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", None, JAN, allow_private=True)
        use_up(engine)
        with TestClient(create_app(carry)), TestClient(create_app(carry)):  # two workers
            deadline = time.monotonic() + 10
            while len(receiver.events) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # several poll intervals: the other worker keeps waiting
            probe = webhook_delivery.try_lock(UnitOfWork(engine))
            if probe is not None:
                probe.release()
        freed = webhook_delivery.try_lock(UnitOfWork(engine))
    assert probe is None  # a serving worker holds the deployment's lock
    assert started == [1]  # and only one of the two runs the loop
    assert set(receiver.counts().values()) == {1} and len(receiver.events) == 4
    assert freed is not None  # shutdown released it
    freed.release()
