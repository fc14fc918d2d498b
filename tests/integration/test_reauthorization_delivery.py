"""Re-authorizations go out to the core's notifyUri with retries (SQLite and PostgreSQL):
services.charging.reauthorization_delivery against a listener on loopback.

The listener answers each POST with the next status of its script. A 503 is tried
again after 1 s, then 2 s; the last attempt failed is dead; a 2xx is delivered. A
secret signs the body as webhooks are signed; a notifyUri on loopback is refused
when private targets are not allowed; two loops at once send each request once.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from carryover.services.charging.reauthorization_delivery import deliver_once
from carryover.settings import Settings
from carryover.store.charging_tables import charging_sessions
from carryover.store.engine import make_engine
from carryover.store.schema import ensure_schema
from carryover.store.tables import accounts
from carryover.store.uow import UnitOfWork

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SECRET = "s" * 32


class Listener:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.received = list(statuses), []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                listener.received.append((self.path, body, dict(self.headers)))
                self.send_response(listener.statuses.pop(0) if listener.statuses else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(db_url: str) -> Iterator:
    engine = make_engine(db_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(id=1, name="a", cycle_day=1, timezone="UTC",
                                              grace_seconds=0, created_at=T0, version=0))
        conn.execute(charging_sessions.insert().values(
            ref="r1", account_id=1, line="L1", subscriber="imsi-1", opened_at=T0,
            updated_at=T0, sequence=0, last_result=[], notify_uri="http://unused"))
    yield engine
    engine.dispose()


def owe(engine, url: str, at: datetime) -> None:
    with UnitOfWork(engine) as uow:
        uow.reauthorizations.offer([{"ref": "r1", "notify_uri": url, "rating_groups": [1, 20],
                                     "reason": "L1: top-up t1", "created_at": at}])
        uow.commit()


def state(engine) -> tuple:
    with UnitOfWork(engine) as uow:
        (row,) = uow.reauthorizations.of_session("r1")
    return row.status, row.attempts, row.last_error, row.next_attempt_at


def test_a_failing_core_is_tried_again_then_given_up(engine) -> None:
    core = Listener([503, 503, 503])
    settings = Settings(nchf_notify_max_attempts=3)
    try:
        owe(engine, core.url, T0)
        clock = [T0]
        assert deliver_once(UnitOfWork(engine), settings, lambda: clock[0]) == {
            "delivered": 0, "retrying": 1, "dead": 0}
        assert state(engine) == ("pending", 1, "HTTP 503", T0 + timedelta(seconds=1))
        assert deliver_once(UnitOfWork(engine), settings, lambda: clock[0])["retrying"] == 0
        clock[0] = T0 + timedelta(seconds=1)
        deliver_once(UnitOfWork(engine), settings, lambda: clock[0])
        assert state(engine)[:3] == ("pending", 2, "HTTP 503")
        assert state(engine)[3] == T0 + timedelta(seconds=3)  # then 2 s
        clock[0] = T0 + timedelta(seconds=3)
        assert deliver_once(UnitOfWork(engine), settings, lambda: clock[0])["dead"] == 1
        assert state(engine)[:3] == ("dead", 3, "HTTP 503")
        assert len(core.received) == 3
        # A new change after that is a new request, delivered.
        owe(engine, core.url, clock[0])
        assert deliver_once(UnitOfWork(engine), settings, lambda: clock[0])["delivered"] == 1
    finally:
        core.close()
    path, body, _ = core.received[-1]
    assert path == "/notify"
    assert json.loads(body) == {"notificationType": "REAUTHORIZATION",
                                "reauthorizationDetails": [{"ratingGroup": 1},
                                                           {"ratingGroup": 20}]}


def test_a_secret_signs_the_body_and_private_targets_can_be_refused(engine) -> None:
    core = Listener([])
    try:
        owe(engine, core.url, T0)
        signed = Settings(nchf_notify_secret=SECRET)
        assert deliver_once(UnitOfWork(engine), signed)["delivered"] == 1
        ((_, body, headers),) = core.received
        stamp = headers["x-carryover-timestamp"]
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        assert headers["x-carryover-signature"] == f"sha256={expected}"
        owe(engine, core.url, T0)
        closed = Settings(nchf_notify_private_targets=False)
        assert deliver_once(UnitOfWork(engine), closed)["retrying"] == 1
        with UnitOfWork(engine) as uow:
            last = uow.reauthorizations.of_session("r1")[-1]
        assert last.last_error.startswith("target refused: ") and len(core.received) == 1
    finally:
        core.close()


def test_two_loops_at_once_send_each_request_once(engine) -> None:
    core = Listener([])
    try:
        owe(engine, core.url, T0)
        results: list[dict] = []
        start = threading.Barrier(2)

        def loop() -> None:
            start.wait()
            results.append(deliver_once(UnitOfWork(engine), Settings()))

        threads = [threading.Thread(target=loop) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        core.close()
    assert sorted(r["delivered"] for r in results) == [0, 1]
    assert len(core.received) == 1 and state(engine)[0] == "delivered"


def test_a_change_while_a_request_is_on_its_way_is_sent_too(engine) -> None:
    core = Listener([])
    try:
        owe(engine, core.url, T0)
        with UnitOfWork(engine) as uow:  # a loop has claimed it and is POSTing
            (first,) = uow.reauthorizations.due(T0, 10)
            assert uow.reauthorizations.claim(first, T0, T0 + timedelta(seconds=30))
            uow.commit()
        owe(engine, core.url, T0 + timedelta(seconds=1))  # meanwhile the line moves again
        assert deliver_once(UnitOfWork(engine), Settings(),
                            lambda: T0 + timedelta(seconds=1))["delivered"] == 1
        with UnitOfWork(engine) as uow:
            rows = uow.reauthorizations.of_session("r1")
        assert [(r.id == first, r.status) for r in rows] == [(True, "pending"),
                                                             (False, "delivered")]
        assert len(core.received) == 1
    finally:
        core.close()


def test_link_local_targets_are_refused_even_where_private_ones_are_allowed(engine) -> None:
    owe(engine, "http://169.254.169.254/latest/meta-data", T0)
    assert deliver_once(UnitOfWork(engine), Settings(nchf_notify_private_targets=True)) == {
        "delivered": 0, "retrying": 1, "dead": 0}
    assert state(engine)[2] == "target refused: link-local address"
