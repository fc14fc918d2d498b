"""Webhooks are no port scanner: refused targets and URLs, checks at delivery, fixed error words.

Refusals are tested without connecting anywhere (getaddrinfo on an IP literal
sends nothing; names are resolved by a stand-in resolver). Deliveries go to
loopback only, with webhook_allow_private_targets on where a test needs it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from carryover.cli import app as cli_app
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import delivery as webhook_delivery
from carryover.services.notify import targets as webhook_targets
from carryover.services.notify import webhooks
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.api_support import served_api
from tests.integration.test_webhooks import JAN, Receiver, use_up, world
from tests.loopback import serving

# Item 4's probe, and the other spellings of the same places.
NON_PUBLIC = [
    "http://127.0.0.1:5432/", "http://[::1]:5432/", "http://0.0.0.0:22/",
    "http://2130706433:5432/", "http://0x7f000001:5432/", "http://017700000001:5432/",
    "http://127.1:5432/", "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:5432/", "http://[fe80::1]/", "http://10.1.2.3/",
    "http://192.168.0.1/", "http://172.16.0.1/", "http://100.64.0.1/",
    "http://224.0.0.1/", "http://240.0.0.1/", "http://[::]/", "http://localhost:5432/",
]
MALFORMED = [
    "http://example.com/\r\nX-Injected: 1", "http://example.com/a b",
    "http://example.com:99999/", "http://example.com:0/", "http://[::1/",
    "http://[zz::1]/", "ftp://example.com/", "file:///etc/passwd", "gopher://x/",
    "http://user:pass@example.com/", "http://@example.com/", "http:///path", "example.com",
]


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_targets_are_refused_unless_allowed(url):
    with pytest.raises(webhook_targets.RefusedTarget) as refused:
        webhook_targets.check(url, allow_private=False)
    assert "address" in refused.value.kind
    assert "webhook_allow_private_targets" in str(refused.value)
    webhook_targets.check(url, allow_private=True)  # labs and tests may


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused_even_when_private_targets_are_allowed(url):
    with pytest.raises(webhook_targets.RefusedTarget) as refused:
        webhook_targets.check(url, allow_private=True)
    assert refused.value.kind == "invalid URL"


@contextmanager
def resolver(monkeypatch, answers: dict[str, list[str]]) -> Iterator[list[str]]:
    """getaddrinfo answering `answers[name]` (a list popped per call); the names asked."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host in answers:
            asked.append(host)
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield asked


def test_every_address_of_a_name_is_checked(monkeypatch):
    def two(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    with pytest.raises(webhook_targets.RefusedTarget, match=r"10\.0\.0\.7 \(private\)"):
        webhook_targets.check("https://hooks.example.com/x", allow_private=False)


def test_a_public_name_passes_and_is_pinned(monkeypatch):
    with resolver(monkeypatch, {"hooks.example.com": ["93.184.216.34"]}):
        target = webhook_targets.check("https://hooks.example.com:8443/a?b=1", False)
        address = webhook_targets.resolve(target, False)
    assert target.pinned_url(address) == "https://93.184.216.34:8443/a?b=1"
    assert target.netloc == "hooks.example.com:8443"


def test_api_refuses_with_422_and_cli_exits_2(db_url, monkeypatch, tmp_path):
    with served_api(db_url, webhook_worker=False) as api:
        for url in [*NON_PUBLIC, *MALFORMED]:
            response = api.call("POST", "/v1/webhooks", json={"url": url})
            assert response.status_code == 422, (url, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        assert api.call("GET", "/v1/webhooks").json()["items"] == []
    monkeypatch.setenv("CARRYOVER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(cli_app, ["init"]).exit_code == 0
    for url in ("http://127.0.0.1:5432/", "http://[::1/", "http://x/\r\nHost: y",
                "http://x:99999/"):
        result = runner.invoke(cli_app, ["webhooks", "add", url])
        assert result.exit_code == 2, (url, result.output)
        assert "Traceback" not in result.output


def test_overlong_and_odd_cursors_are_422(db_url):
    with served_api(db_url, webhook_worker=False) as api:
        for path in ("/v1/webhooks/dead", "/v1/webhooks"):
            for cursor in ("OTk5" * 100, "OQ" + "OTk5" * 99,  # '999...' of 300 digits
                           "AA",  # a NUL byte
                           "wrI",  # '²': a Unicode digit
                           "eA" * 200):
                response = api.call("GET", f"{path}?cursor={cursor}")
                assert 400 <= response.status_code < 500, (path, cursor, response.text)


def test_delivery_rechecks_the_target_and_sends_nothing_there(db_url, monkeypatch):
    # Registered while the name was public; at delivery it resolves to loopback
    # (DNS rebinding): the attempt is refused before any connection.
    carry, engine = world(db_url, webhook_allow_private_targets=False,
                          webhook_max_attempts=1)
    receiver = Receiver()
    with serving(receiver.app()) as base:
        port = base.rsplit(":", 1)[1]
        with resolver(monkeypatch, {"rebind.example.com": ["93.184.216.34", "127.0.0.1"]}):
            webhooks.add_endpoint(UnitOfWork(engine), f"http://rebind.example.com:{port}/hook",
                                  None, JAN)
            use_up(engine)
            done = webhooks.deliver_once(UnitOfWork(engine), carry.settings)
    assert done["dead"] == 4 and receiver.calls == 0
    dead = webhooks.dead_letters(UnitOfWork(engine))
    assert {d["last_error"] for d in dead} == {"target refused: loopback address"}


def test_delivery_connects_to_the_checked_address_with_the_original_host(db_url, monkeypatch):
    carry, engine = world(db_url)  # loopback allowed: the receiver is on 127.0.0.1
    receiver = Receiver()
    with serving(receiver.app()) as base:
        port = base.rsplit(":", 1)[1]
        with resolver(monkeypatch, {"hooks.internal.test": ["127.0.0.1"]}) as asked:
            webhooks.add_endpoint(UnitOfWork(engine), f"http://hooks.internal.test:{port}/hook",
                                  None, JAN, allow_private=True)
            use_up(engine)
            assert webhooks.deliver_once(UnitOfWork(engine), carry.settings)["delivered"] == 4
    assert len(asked) >= 5  # at registration, then at each attempt
    assert {h["host"] for _, h in receiver.received} == {f"hooks.internal.test:{port}"}


@contextmanager
def raw_listener(behaviour: str) -> Iterator[int]:
    """A loopback TCP port that is closed, or open and then silent / not HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if behaviour == "closed":
        sock.close()
        yield port
        return
    sock.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            if behaviour == "banner":  # an SSH-like service
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
                conn.close()
            elif behaviour == "garbage":  # a database's binary answer, then close
                conn.recv(4096)
                conn.sendall(b"E\x00\x00\x00\x10SFATAL\x00\x00")
                conn.close()
            elif behaviour == "drip":  # an HTTP status line, one byte per 0.1 s
                conn.recv(4096)
                held.append(conn)
                threading.Thread(target=drip, args=(conn,), daemon=True).start()
            else:  # silent: accepts and never answers
                held.append(conn)

    def drip(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 10_000:
            if stop.is_set():
                return
            try:
                conn.send(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()


def test_last_error_does_not_tell_open_ports_from_closed(db_url):
    carry, engine = world(db_url, webhook_max_attempts=1, webhook_timeout=0.5)
    errors = {}
    for behaviour in ("closed", "banner", "garbage", "silent"):
        with raw_listener(behaviour) as port:
            info, _ = webhooks.add_endpoint(UnitOfWork(engine), f"http://127.0.0.1:{port}/h",
                                            ["usage_50"], JAN, allow_private=True)
            line = f"l{behaviour}"  # one usage_50 notification per endpoint
            provisioning.create_line(UnitOfWork(engine), "acct", f"+49151000009{len(errors)}", JAN,
                                     "tmobile-data-stash-10gb", line_id=line)
            ledger_ops.record_usage(UnitOfWork(engine), line, 6 * 1024**3, JAN, JAN, f"e-{line}")
            webhooks.deliver_once(UnitOfWork(engine), carry.settings)
            errors[behaviour] = {d["last_error"] for d in webhooks.dead_letters(UnitOfWork(engine))
                                 if d["endpoint"] == info["id"]}
            webhooks.remove_endpoint(UnitOfWork(engine), info["id"], JAN)
    assert all(e == {webhook_delivery.NO_RESPONSE} for e in errors.values()), errors


def test_a_redirect_is_not_followed(db_url):
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    hits: list[str] = []

    async def hook(request):
        hits.append(request.url.path)
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=307)

    carry, engine = world(db_url, webhook_max_attempts=1)
    with serving(Starlette(routes=[Route("/h", hook, methods=["POST"])])) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/h", ["usage_50"], JAN,
                              allow_private=True)
        use_up(engine)
        webhooks.deliver_once(UnitOfWork(engine), carry.settings)
    assert hits == ["/h"]
    assert [d["last_error"] for d in webhooks.dead_letters(UnitOfWork(engine))] == ["HTTP 307"]


def test_an_attempt_is_cut_off_at_the_timeout_even_when_bytes_keep_coming(db_url):
    # A receiver that drips its status line a byte at a time never trips a
    # per-read timeout; the attempt still ends at webhook_timeout, inside its lease.
    carry, engine = world(db_url, webhook_max_attempts=1, webhook_timeout=0.6)
    with raw_listener("drip") as port:
        webhooks.add_endpoint(UnitOfWork(engine), f"http://127.0.0.1:{port}/h", ["usage_50"], JAN,
                              allow_private=True)
        use_up(engine)
        started = time.monotonic()
        webhooks.deliver_once(UnitOfWork(engine), carry.settings)
        took = time.monotonic() - started
    assert [d["last_error"] for d in webhooks.dead_letters(UnitOfWork(engine))] == [
        webhook_delivery.NO_RESPONSE]
    assert took < 3


def test_the_setting_is_off_by_default():
    assert get_settings().webhook_allow_private_targets is False
