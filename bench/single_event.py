"""Latency of the single-event path: `ledger_ops.record_usage`, one unit of work per event.

Each call locks the account, inserts the event, loads the book, rates the event,
writes back what changed and the notifications that hold, and commits. The
script creates a fresh SQLite database (or uses `--database-url`), one account
with a few lines, and times `--events` calls spread over those lines in time
order. It reports the mean and the 50th/95th/99th percentiles in milliseconds.

    .venv/bin/python bench/single_event.py                   # 2,000 events on SQLite
    .venv/bin/python bench/single_event.py --events 200 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

START = datetime(2026, 1, 1, tzinfo=UTC)
PLAN = "tmobile-data-stash-10gb"


def run(events: int, lines: int, database_url: str) -> dict:
    carry = Carryover(get_settings(database_url=database_url))
    engine = carry.open()
    provisioning.create_account(UnitOfWork(engine), "bench", 1, "UTC", START)
    ids = [f"l{n}" for n in range(lines)]
    for n, line in enumerate(ids):
        provisioning.create_line(UnitOfWork(engine), "bench", f"+1415555{n:04d}", START, PLAN,
                                 line_id=line)
    samples: list[float] = []
    # One event a minute keeps every event inside January: no boundary, as in steady state.
    for n in range(events):
        at = START + timedelta(minutes=n % 40_000)
        started = time.perf_counter()
        ledger_ops.record_usage(UnitOfWork(engine), ids[n % lines], 1_000_000, at, at, f"ev-{n}")
        samples.append(time.perf_counter() - started)
    engine.dispose()
    ms = sorted(s * 1000 for s in samples)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 3)
    return {"events": events, "lines": lines, "mean_ms": round(statistics.fmean(ms), 3),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--database-url", default=None,
                        help="default: a new SQLite file in a temporary directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        result = run(args.events, args.lines, url)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['events']} events over {result['lines']} lines: "
              f"mean {result['mean_ms']} ms, p50 {result['p50_ms']} ms, "
              f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
