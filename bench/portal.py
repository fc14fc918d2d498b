"""Benchmark of the portal's overview page: server time for a line with 3,000 events in
its cycle, on SQLite, against the target p95 of 50 ms, in the same run.

A fresh SQLite database gets one account on tmobile-data-stash-10gb, opened 70 days
ago, and 3,000 usage events spread over the current cycle up to now (a batch, not
timed). A subscriber signs in by a one-time link; then GET /portal/lines/LINE is
sent --requests times through the whole app (FastAPI, the session and rate-limit
checks, the read of the book, the template), in process over ASGI, so what is
timed is the server's work and not a network. The first request is reported
apart (it warms the caches) and left out of the percentiles.

    .venv/bin/python bench/portal.py                   # 3,000 events, 200 requests
    .venv/bin/python bench/portal.py --events 300 --requests 20 --json   # smoke run

See docs/performance.md ("Portal") for measured numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.services.access import portal_sessions as portal_access
from carryover.services.ingest import values as batch
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

TARGET_P95_MS = 50.0
PLAN = "tmobile-data-stash-10gb"


def build(database: str, events: int) -> tuple[Carryover, str]:
    carry = Carryover(get_settings(database_url=database, api_rate_per_second=0,
                                   webhook_worker=False))
    engine = carry.open()
    now = datetime.now(UTC).replace(microsecond=0)
    opened = now - timedelta(days=70)
    provisioning.create_account(UnitOfWork(engine), "bench", 1, "America/Los_Angeles", opened)
    provisioning.create_line(UnitOfWork(engine), "bench", "+14155550100", opened, PLAN,
                             line_id="L1")
    start = datetime(now.year, now.month, 1, 8, tzinfo=UTC)  # on or after the boundary
    if start > now:
        start = now - timedelta(days=1)
    step = (now - start) / (events + 1)
    rows = [batch.UsageRow(f"e{n}", "L1", start + step * (n + 1), 1_000_000, now)
            for n in range(events)]
    accepted = sum(batch.record_batch(UnitOfWork(engine), rows[first:first + 1000]).accepted
                   for first in range(0, events, 1000))
    assert accepted == events, f"{accepted} of {events} events accepted"
    token, *_ = portal_access.create_link(UnitOfWork(engine), "L1", now, timedelta(hours=1))
    return carry, token


async def measure(carry: Carryover, token: str, requests: int) -> tuple[float, list[float]]:
    transport = httpx.ASGITransport(app=create_app(carry))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        page = await client.get(f"/portal/link/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
        signed = await client.post(f"/portal/link/{token}", data={"csrf": csrf})
        assert signed.status_code == 303, signed.text
        times = []
        for _ in range(requests + 1):
            began = time.perf_counter()
            answer = await client.get("/portal/lines/L1")
            times.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200 and "data-bucket" in answer.text
    return times[0], times[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="usage events in the cycle")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        carry, token = build(f"sqlite:///{Path(work) / 'portal.db'}", args.events)
        first, times = asyncio.run(measure(carry, token, args.requests))
        carry.open().dispose()
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    out = {"events": args.events, "requests": args.requests, "first_ms": round(first, 1),
           "p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
           "max_ms": round(ordered[-1], 1), "target_p95_ms": TARGET_P95_MS,
           "verdict": "PASS" if p95 <= TARGET_P95_MS else "FAIL",
           "python": platform.python_version()}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"portal overview: 1 line, {args.events:,} events in the cycle, SQLite, "
          f"{args.requests} requests (Python {out['python']})")
    print(f"{'measure':<26}{'ms':>10}")
    for name, key in (("first request", "first_ms"), ("p50", "p50_ms"), ("p95", "p95_ms"),
                      ("max", "max_ms"), ("target p95", "target_p95_ms")):
        print(f"{name:<26}{out[key]:>10.1f}")
    print(f"verdict: {out['verdict']} (p95 {p95:.1f} ms against {TARGET_P95_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
