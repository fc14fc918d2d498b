"""Webhook delivery to a loopback receiver: signatures, retries, downtime, dead letters, replay."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import webhooks
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.loopback import serving

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)


class Receiver:
    """Answers 503 to the first `fail_first` calls (or while `down`), then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first, self.down, self.calls = fail_first, False, 0
        self.received: list[tuple[bytes, dict]] = []

    async def hook(self, request: Request) -> Response:
        self.calls += 1
        body = await request.body()
        if self.down or self.calls <= self.fail_first:
            return Response(status_code=503)
        self.received.append((body, dict(request.headers)))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def world(db_url: str, **settings):
    # The receivers are on loopback: deliveries there are refused unless allowed.
    settings.setdefault("webhook_allow_private_targets", True)
    carry = Carryover(get_settings(database_url=db_url, webhook_backoff=0.01,
                                   webhook_poll_seconds=0.01, **settings))
    engine = carry.open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN,
                             "tmobile-data-stash-10gb", line_id="t")
    return carry, engine


def use_up(engine) -> None:
    at = JAN + timedelta(days=3)
    for k, amount in enumerate((5, 3, 2, 1)):
        ledger_ops.record_usage(UnitOfWork(engine), "t", amount * GB, at, at, f"e{k}")


def drain(engine, settings, until, passes: int = 300) -> None:
    for _ in range(passes):
        webhooks.deliver_once(UnitOfWork(engine), settings)
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("deliveries did not settle")


def verified(secret: str, body: bytes, headers: dict) -> bool:
    stamp = headers["x-carryover-timestamp"]
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(headers["x-carryover-signature"],
                               "sha256=" + expected.hexdigest())


def test_every_notification_arrives_once_after_retries(db_url):
    carry, engine = world(db_url, webhook_max_attempts=10)
    receiver = Receiver(fail_first=3)
    with serving(receiver.app()) as base:
        _, secret = webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", None, JAN,
                                          allow_private=True)
        use_up(engine)
        drain(engine, carry.settings, lambda: len(receiver.received) == 4)
        for _ in range(5):  # nothing is sent twice once delivered
            webhooks.deliver_once(UnitOfWork(engine), carry.settings)
    bodies = [json.loads(b) for b, _ in receiver.received]
    assert sorted(b["kind"] for b in bodies) == ["throttled", "usage_100", "usage_50",
                                                 "usage_80"]
    assert len({b["id"] for b in bodies}) == 4
    assert all(verified(secret, b, h) for b, h in receiver.received)
    assert not verified("wrong", *receiver.received[0])
    assert webhooks.list_endpoints(UnitOfWork(engine))[0]["delivered"] == 4


def test_a_receiver_down_for_a_while_gets_everything_once_back(db_url):
    carry, engine = world(db_url, webhook_max_attempts=50)
    receiver = Receiver()
    receiver.down = True
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook",
                              ["usage_50", "usage_80", "usage_100"], JAN, allow_private=True)
        use_up(engine)
        for _ in range(10):
            webhooks.deliver_once(UnitOfWork(engine), carry.settings)
            time.sleep(0.02)
        assert receiver.received == [] and receiver.calls >= 3
        receiver.down = False
        drain(engine, carry.settings, lambda: len(receiver.received) == 3)
        webhooks.deliver_once(UnitOfWork(engine), carry.settings)
    assert sorted(json.loads(b)["kind"] for b, _ in receiver.received) == [
        "usage_100", "usage_50", "usage_80"]  # --kinds filtered out `throttled`


def test_dead_letters_after_max_attempts_and_replay(db_url):
    carry, engine = world(db_url, webhook_max_attempts=2)
    receiver = Receiver()
    receiver.down = True
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", ["usage_50"], JAN,
                              allow_private=True)
        ledger_ops.record_usage(UnitOfWork(engine), "t", 6 * GB, JAN + timedelta(days=1),
                                JAN + timedelta(days=1), "e1")
        drain(engine, carry.settings, lambda: bool(webhooks.dead_letters(UnitOfWork(engine))))
        dead = webhooks.dead_letters(UnitOfWork(engine))
        assert [(d["kind"], d["attempts"], d["last_error"]) for d in dead] == [
            ("usage_50", 2, "HTTP 503")]
        assert receiver.calls == 2
        receiver.down = False
        webhooks.replay(UnitOfWork(engine), dead[0]["id"], datetime.now(UTC))
        drain(engine, carry.settings, lambda: len(receiver.received) == 1)
    assert webhooks.dead_letters(UnitOfWork(engine)) == []
    assert json.loads(receiver.received[0][0])["kind"] == "usage_50"


def test_serve_runs_the_delivery_worker(db_url):
    from fastapi.testclient import TestClient

    from carryover.api.app import create_app

    carry, engine = world(db_url)
    receiver = Receiver(fail_first=1)
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", ["usage_50"], JAN,
                              allow_private=True)
        ledger_ops.record_usage(UnitOfWork(engine), "t", 6 * GB, JAN + timedelta(days=1),
                                JAN + timedelta(days=1), "e1")
        with TestClient(create_app(carry)):
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
    assert len(receiver.received) == 1


def test_the_worker_can_be_turned_off(db_url):
    from fastapi.testclient import TestClient

    from carryover.api.app import create_app

    carry, engine = world(db_url, webhook_worker=False)
    receiver = Receiver()
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", None, JAN,
                              allow_private=True)
        use_up(engine)
        with TestClient(create_app(carry)):
            time.sleep(0.3)
    assert receiver.calls == 0
