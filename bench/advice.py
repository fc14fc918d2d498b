"""Benchmark of advice (docs/advice.md): one line, 6 complete cycles, 7 candidate plans,
3,000 usage events per cycle, against the floor of 200 ms, in the same run.

The line is on tmobile-data-stash-10gb; the candidates are the six data presets
that are not packs and one priced plan of our own. The account's book is folded
once (not timed: a stored book is loaded, not folded, by the service), up to an
instant 4 days into the 7th cycle; what is timed is `domain.advice.advise` there: the
forecast, rollover at risk, the plan fit (7 replays of 6 cycles through the fold)
and the switch what-ifs. Best of --runs; the first run is also reported.

    .venv/bin/python bench/advice.py                     # 6 cycles x 3,000 events, 7 plans
    .venv/bin/python bench/advice.py --events 300 --json # smoke run

See docs/performance.md ("Advice") for measured numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime, timedelta

from carryover.domain.advice import advise
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, Usage
from carryover.domain.plans import plan_from_mapping
from carryover.plan_files import load_presets

FLOOR_MS = 200.0
START = datetime(2026, 1, 1, tzinfo=UTC)
OURS = plan_from_mapping({"id": "ours-15gb", "allowance": {"data": "15GB"},
                          "overage": {"action": "throttle", "kbps": "256kbps"},
                          "price": {"amount": "35.00", "currency": "USD"}})


def build(events_per_cycle: int, cycles: int) -> tuple[AccountBook, datetime]:
    presets = load_presets()
    plans = {pid: p for pid, p in presets.items() if p.kind.value != "pack"}
    plans[OURS.id] = OURS
    calendar = CycleCalendar(1, "UTC")
    book = AccountBook(calendar, plans)
    book.submit(OpenLine("open", "line", START, "tmobile-data-stash-10gb"))
    start = START
    n = 0
    at = None
    for c in range(cycles + 1):
        _, end = calendar.cycle_at(start)
        step = (end - start) / events_per_cycle
        if c == cycles:  # the cycle of `at`: its first 4 days
            at = start + timedelta(days=4)
        for k in range(events_per_cycle):
            t = start + step * k
            if at is not None and t > at:
                break
            # ~12 GB a cycle, heavier at weekends: throttled on some plans, not others.
            amount = 3_500_000 + (2_000_000 if t.weekday() >= 5 else 0) + (k % 11) * 90_000
            book.submit(Usage(f"e{n:07d}", "line", t, amount))
            n += 1
        start = end
    assert at is not None
    return book, at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="usage events per cycle")
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    book, at = build(args.events, args.cycles)
    inputs = list(book.ordered_inputs())
    times = []
    result = None
    for _ in range(args.runs):
        began = time.perf_counter()
        result = advise(book, inputs, "line", at, args.cycles)
        times.append((time.perf_counter() - began) * 1000)
    assert result is not None and result["cycles"] == args.cycles, result
    plans = len(result["plans"])
    best = min(times)
    out = {"events_per_cycle": args.events, "cycles": args.cycles, "plans": plans,
           "events": len(inputs) - 1, "first_ms": round(times[0], 1), "best_ms": round(best, 1),
           "floor_ms": FLOOR_MS, "verdict": "PASS" if best <= FLOOR_MS else "FAIL",
           "python": platform.python_version(), "best_plan": result["plans"][0]["plan"]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"advice: {args.cycles} cycles x {args.events:,} events, {plans} plans "
          f"(Python {out['python']})")
    print(f"{'measure':<28}{'ms':>10}")
    print(f"{'advise, first run':<28}{times[0]:>10.1f}")
    print(f"{'advise, best of ' + str(args.runs):<28}{best:>10.1f}")
    print(f"{'floor (target)':<28}{FLOOR_MS:>10.1f}")
    print(f"verdict: {out['verdict']} (best {best:.1f} ms against {FLOOR_MS:.0f} ms); "
          f"best plan: {out['best_plan']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
