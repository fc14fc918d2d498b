"""The shared rate limit (services.access.rate_limits): GCRA in the database,
on SQLite and PostgreSQL.

- the algorithm: a burst, then one request per interval, Retry-After exact;
- two separate OS processes on the same database share one key's budget;
- two app instances on the same database answer 429 with Retry-After once the
  key's budget is spent across both;
- `carryover serve --workers N` turns the `auto` store into the database one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.services.access import rate_limits
from carryover.services.access.rate_limits import DatabaseRateLimiter, RateLimiter, make_limiter
from carryover.settings import get_settings
from carryover.store.api_tables import api_rate_limits
from carryover.store.uow import UnitOfWork
from tests.api_support import populate
from tests.loopback import serving

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0  # an instant in seconds since the epoch, well inside int64 microseconds


def test_gcra_burst_then_one_per_interval(engine):
    limiter = DatabaseRateLimiter(rate=2, burst=3, uow=lambda: UnitOfWork(engine))  # 500 ms a cell
    assert [limiter.wait_for("k", now=T0) for _ in range(3)] == [0, 0, 0]
    assert limiter.wait_for("k", now=T0) == 0.5  # the next cell is 500 ms away
    assert limiter.wait_for("k", now=T0 + 0.25) == 0.25  # a refusal costs nothing
    assert limiter.wait_for("k", now=T0 + 0.5) == 0
    assert limiter.wait_for("k", now=T0 + 0.5) == 0.5
    assert limiter.wait_for("other", now=T0) == 0  # each key has its own state
    # Idle time refills up to the burst, never beyond it.
    assert [limiter.wait_for("k", now=T0 + 100) for _ in range(4)] == [0, 0, 0, 0.5]
    with engine.connect() as conn:
        row = conn.execute(select(api_rate_limits).where(api_rate_limits.c.key_id == "k")).one()
    assert isinstance(row.tat, int) and row.tat == round((T0 + 100) * 1e6) + 3 * 500_000
    assert row.allowed is False


def test_interval_is_whole_microseconds():
    assert rate_limits.interval_us(50) == 20_000
    assert rate_limits.interval_us(3) == 333_333
    assert rate_limits.interval_us(10**9) == 1


def test_zero_rate_turns_the_limit_off(engine):
    limiter = DatabaseRateLimiter(rate=0, burst=1, uow=lambda: UnitOfWork(engine))
    assert all(limiter.wait_for("k", now=T0) == 0 for _ in range(5))


def test_two_processes_share_one_budget(engine, db_url, tmp_path):
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "tests.integration.rate_limit_worker", db_url, "shared", "10",
         str(go)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    allowed = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        allowed.append(int(out.strip()))
    # Each process alone would get its 10; together they get 10, however interleaved.
    assert sum(allowed) == 10, allowed


def test_two_apps_on_one_database_answer_429(db_url):
    settings = get_settings(database_url=db_url, api_rate_per_second=0.01, api_rate_burst=3,
                            api_rate_limit_store="database", webhook_worker=False)
    first, second = Carryover(settings), Carryover(settings)
    tokens = populate(first.open())
    headers = {"Authorization": f"Bearer {tokens['acme']}"}
    with serving(create_app(first)) as one, serving(create_app(second)) as two, \
            httpx.Client(timeout=30) as client:
        codes = [client.get(url + "/v1/plans", headers=headers).status_code
                 for url in (one, two, one, two)]
        assert codes == [200, 200, 200, 429]
        limited = client.get(one + "/v1/plans", headers=headers)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["Retry-After"]) <= 100  # one cell: 100 s at 0.01/s
        other = {"Authorization": f"Bearer {tokens['other']}"}
        assert client.get(two + "/v1/plans", headers=other).status_code == 200
    for carry in (first, second):
        carry.open().dispose()


def test_store_setting_picks_the_limiter(db_url):
    engine = lambda: None  # noqa: E731 - the unit-of-work factory, never called when building
    assert isinstance(make_limiter(get_settings(database_url=db_url), engine), RateLimiter)
    assert isinstance(make_limiter(get_settings(database_url=db_url,
                                                api_rate_limit_store="memory"), engine),
                      RateLimiter)
    assert isinstance(make_limiter(get_settings(database_url=db_url,
                                                api_rate_limit_store="database"), engine),
                      DatabaseRateLimiter)


def test_serve_with_two_workers_shares_the_limit(db_url, tmp_path):
    """The real thing: `carryover serve --workers 2`, requests on fresh connections."""
    carry = Carryover(get_settings(database_url=db_url))
    tokens = populate(carry.open())
    carry.open().dispose()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "CARRYOVER_DATABASE_URL": db_url, "CARRYOVER_API_RATE_PER_SECOND": "0.01",
           "CARRYOVER_API_RATE_BURST": "3", "CARRYOVER_WEBHOOK_WORKER": "false"}
    env.pop("CARRYOVER_API_RATE_LIMIT_STORE", None)
    server = subprocess.Popen([sys.executable, "-m", "carryover.cli", "serve", "--port",
                               str(port), "--workers", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {tokens['acme']}"}
        # A new connection per request, so both workers take some of them.
        codes = [httpx.get(base + "/v1/plans", headers=headers, timeout=30).status_code
                 for _ in range(8)]
        assert sorted(codes) == [200] * 3 + [429] * 5, codes
    finally:
        server.terminate()
        server.communicate(timeout=30)
