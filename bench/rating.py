"""Benchmark of the rating core: events in time order -> debits and overage.

The order buckets are drained in is docs/semantics.md, "Buckets and the
consumption order".

The core path is what a bulk rating run does with a batch of usage events whose
lines' buckets do not change during the batch: group the events (which arrive
in time order, lines interleaved) into one run per line with an exact int64
sum, then drain every line's demand through its ordered buckets at once with
`carryover.domain.rating.drain`. The comparison is the obvious per-event Python
loop: for each event in time order, walk the line's buckets in consumption
order, take min(left, need), update.

Both paths must give the same debit per bucket and the same overage per line;
the script exits 1 if they do not. The speed target (>= 2,000,000 events/s for
the core) is reported as PASS/FAIL but does not change the exit status.

    .venv/bin/python bench/rating.py                      # 1,000,000 events, 100,000 lines
    .venv/bin/python bench/rating.py --events 20000 --lines 2000 --json   # smoke run

See docs/performance.md ("Rating core") for measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

from carryover.domain.buckets import UNLIMITED
from carryover.domain.plans import DEFAULT_PRIORITIES, BucketKind
from carryover.domain.rating import drain

I64 = np.int64
KB = 1024
MB = 1024**2
GB = 1024**3
TARGET_EVENTS_PER_S = 2_000_000
LOOP_BUDGET_S = 60.0
CORE_REPEATS = 3

# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """Usage events in time order and every line's live buckets in consumption order."""

    at: np.ndarray  # int64[E] seconds into the cycle, non-decreasing
    line: np.ndarray  # int64[E] line index of each event
    amount: np.ndarray  # int64[E] bytes of each event
    ptr: np.ndarray  # int64[L+1] line l owns bucket entries ptr[l]:ptr[l+1]
    left: np.ndarray  # int64[Q] what each bucket has left (UNLIMITED for no cap)
    kind: np.ndarray  # object[Q] BucketKind of each entry (for the summary only)

    @property
    def n_lines(self) -> int:
        return len(self.ptr) - 1


def make_workload(n_events: int, n_lines: int, seed: int) -> Workload:
    """A deterministic month of data usage for `n_lines` lines.

    Events: sizes log-normal around 1 MB, clipped to 10 KB..50 MB, plus 0.1 % of
    big downloads up to 2 GB; lines drawn with Pareto weights so a few heavy
    users make many of the events. Buckets: 2-4 per line (allowance, rollover,
    top-ups); 5 % of lines are on an unlimited plan (a small bonus before an
    UNLIMITED allowance); about a fifth of the metered lines are nearly out so
    that overage happens.
    """
    rng = np.random.default_rng(seed)

    # -- lines and their buckets
    n_buckets = rng.choice(np.array([2, 3, 4]), size=n_lines, p=[0.5, 0.35, 0.15])
    unlimited_line = rng.random(n_lines) < 0.05
    nearly_out = (rng.random(n_lines) < 0.2) & ~unlimited_line
    ptr = np.zeros(n_lines + 1, dtype=I64)
    np.cumsum(n_buckets, out=ptr[1:])
    q = int(ptr[-1])
    owner = np.repeat(np.arange(n_lines, dtype=I64), n_buckets)
    pos = np.arange(q, dtype=I64) - ptr[:-1][owner]  # position within the line's queue
    count = n_buckets[owner]

    # Kinds by position, already in consumption order (DEFAULT_PRIORITIES:
    # bonus < allowance < rollover < topup).
    metered_kinds = np.array(
        [BucketKind.ALLOWANCE, BucketKind.ROLLOVER, BucketKind.TOPUP, BucketKind.TOPUP],
        dtype=object,
    )
    kind = metered_kinds[pos]
    unl = unlimited_line[owner]
    # Unlimited lines: [bonus, allowance*, topup...] or, with 4, [bonus, bonus, allowance*, topup].
    unl_allow_pos = np.where(count == 4, 2, 1)
    kind = np.where(unl & (pos < unl_allow_pos), BucketKind.BONUS, kind)
    kind = np.where(unl & (pos == unl_allow_pos), BucketKind.ALLOWANCE, kind)
    kind = np.where(unl & (pos > unl_allow_pos), BucketKind.TOPUP, kind)
    prio = np.array([DEFAULT_PRIORITIES[k] for k in kind.tolist()])
    assert np.all((np.diff(prio) >= 0) | (np.diff(owner) != 0)), "queues must be in order"

    plan_sizes = np.array([1, 2, 5, 10, 15, 20, 50], dtype=I64) * GB
    granted = plan_sizes[rng.integers(0, len(plan_sizes), size=n_lines)][owner]
    frac = rng.random(q)
    left = np.empty(q, dtype=I64)
    is_allow = kind == BucketKind.ALLOWANCE
    is_roll = kind == BucketKind.ROLLOVER
    is_topup = kind == BucketKind.TOPUP
    is_bonus = kind == BucketKind.BONUS
    left[is_allow] = (frac[is_allow] * granted[is_allow]).astype(I64)
    left[is_roll] = (frac[is_roll] * granted[is_roll] / 2).astype(I64)
    topup_size = np.where(rng.random(q) < 0.7, 1 * GB, 5 * GB)
    left[is_topup] = (frac[is_topup] * topup_size[is_topup]).astype(I64)
    left[is_bonus] = (frac[is_bonus] * 500 * MB).astype(I64)
    # Nearly out: every bucket of the line has at most 50 MB left.
    small = nearly_out[owner]
    left[small] = rng.integers(0, 50 * MB, size=int(small.sum()), endpoint=True)
    left[unl & is_allow] = UNLIMITED
    left = np.maximum(left, 1)  # live buckets have something left

    # -- events, in time order
    weight = rng.pareto(1.2, size=n_lines) + 1.0
    heavy = rng.random(n_lines) < 0.01
    weight[heavy] *= 20.0
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    line = np.searchsorted(cdf, rng.random(n_events), side="right").astype(I64)
    np.minimum(line, n_lines - 1, out=line)
    size = np.exp(rng.normal(np.log(1 * MB), 1.6, size=n_events))
    amount = np.clip(size, 10 * KB, 50 * MB).astype(I64)
    big = rng.random(n_events) < 0.001
    amount[big] = rng.integers(50 * MB, 2 * GB, size=int(big.sum()), endpoint=True)
    at = np.sort(rng.integers(0, 30 * 86_400, size=n_events)).astype(I64)
    return Workload(at=at, line=line, amount=amount, ptr=ptr, left=left, kind=kind)


# --------------------------------------------------------------------------- the two paths


@dataclass(frozen=True)
class CoreResult:
    debit: np.ndarray
    overage: np.ndarray
    group_s: float
    drain_s: float

    @property
    def total_s(self) -> float:
        return self.group_s + self.drain_s


def demand_per_line(line: np.ndarray, amount: np.ndarray, n_lines: int) -> np.ndarray:
    """Events in time order -> total demand per line, as per-line runs (exact int64).

    The stable sort keeps each line's events in time order inside its run, which
    is what explaining a run event by event (rating.split_events) needs.
    """
    demand = np.zeros(n_lines, dtype=I64)
    if len(line) == 0:
        return demand
    order = np.argsort(line, kind="stable")
    by_line = line[order]
    starts = np.flatnonzero(by_line[1:] != by_line[:-1]) + 1
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    demand[by_line[starts]] = np.add.reduceat(amount[order], starts)
    return demand


def rate_core(w: Workload, n_events: int | None = None) -> CoreResult:
    """The core path on the first `n_events` events (all by default)."""
    line = w.line if n_events is None else w.line[:n_events]
    amount = w.amount if n_events is None else w.amount[:n_events]
    t0 = time.perf_counter()
    demand = demand_per_line(line, amount, w.n_lines)
    t1 = time.perf_counter()
    drained = drain(demand, w.ptr, w.left)
    t2 = time.perf_counter()
    return CoreResult(drained.debit, drained.overage, t1 - t0, t2 - t1)


def _loop_chunk(
    lines: list[int],
    amounts: list[int],
    ptr: list[int],
    left: list[int],
    debit: list[int],
    overage: list[int],
) -> None:
    """The plain per-event loop, in place on Python lists."""
    for line, need in zip(lines, amounts, strict=True):
        for k in range(ptr[line], ptr[line + 1]):
            take = min(left[k], need)
            left[k] -= take
            debit[k] += take
            need -= take
            if need == 0:
                break
        overage[line] += need


@dataclass(frozen=True)
class LoopResult:
    debit: np.ndarray
    overage: np.ndarray
    events_done: int
    seconds: float


def rate_loop(w: Workload, budget_s: float, chunk: int = 65_536) -> LoopResult:
    """The per-event loop in time order; stops early if the whole run would exceed `budget_s`.

    It runs chunk by chunk and, after each chunk, projects the time for all
    events; once the projection is over budget it stops, and the caller
    extrapolates and checks the core on the same prefix of events.
    """
    n = len(w.line)
    t0 = time.perf_counter()
    ptr = w.ptr.tolist()
    left = w.left.tolist()
    debit = [0] * len(left)
    overage = [0] * w.n_lines
    done = 0
    while done < n:
        end = min(n, done + chunk)
        _loop_chunk(
            w.line[done:end].tolist(), w.amount[done:end].tolist(), ptr, left, debit, overage
        )
        done = end
        elapsed = time.perf_counter() - t0
        if done < n and elapsed / done * n > budget_s:
            break
    seconds = time.perf_counter() - t0
    return LoopResult(np.array(debit, dtype=I64), np.array(overage, dtype=I64), done, seconds)


# --------------------------------------------------------------------------- report


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    w = make_workload(args.events, args.lines, args.seed)
    gen_s = time.perf_counter() - t0

    runs = [rate_core(w) for _ in range(CORE_REPEATS)]
    best = min(runs, key=lambda r: r.total_s)
    loop = rate_loop(w, args.loop_budget)
    sampled = loop.events_done < args.events
    # Check both paths on exactly the events the loop rated.
    check = rate_core(w, loop.events_done) if sampled else best
    same_debit = bool(np.array_equal(check.debit, loop.debit))
    same_overage = bool(np.array_equal(check.overage, loop.overage))
    rated = int(w.amount[: loop.events_done].sum())
    conserved = int(check.debit.sum()) + int(check.overage.sum()) == rated
    agree = same_debit and same_overage and conserved

    loop_eps = loop.events_done / loop.seconds if loop.seconds > 0 else float("inf")
    loop_full_s = args.events / loop_eps if sampled else loop.seconds
    core_eps = args.events / best.total_s if best.total_s > 0 else float("inf")
    return {
        "events": args.events,
        "lines": args.lines,
        "buckets": len(w.left),
        "seed": args.seed,
        "unlimited_buckets": int((w.left == UNLIMITED).sum()),
        "lines_with_events": int(np.unique(w.line).size),
        "lines_in_overage": int((best.overage > 0).sum()),
        "overage_bytes": int(best.overage.sum()),
        "usage_bytes": int(w.amount.sum()),
        "generate_seconds": gen_s,
        "core": {
            "seconds": best.total_s,
            "group_seconds": best.group_s,
            "drain_seconds": best.drain_s,
            "events_per_s": core_eps,
            "runs_seconds": [r.total_s for r in runs],
            "best_of": CORE_REPEATS,
        },
        "loop": {
            "events_timed": loop.events_done,
            "seconds": loop.seconds,
            "seconds_for_all_events": loop_full_s,
            "extrapolated": sampled,
            "events_per_s": loop_eps,
        },
        "speedup": loop_full_s / best.total_s if best.total_s > 0 else float("inf"),
        "agree": agree,
        "checked_events": loop.events_done,
        "checks": {
            "debit_per_bucket": same_debit,
            "overage_per_line": same_overage,
            "conservation": conserved,
        },
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "pass": core_eps >= TARGET_EVENTS_PER_S,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nproc": _nproc(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def print_table(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    core, loop = r["core"], r["loop"]
    table = Table(
        title=(
            f"Rating core: {r['events']:,} events over {r['lines']:,} lines, "
            f"{r['buckets']:,} buckets (seed {r['seed']})"
        )
    )
    for name in ("path", "events", "lines", "seconds", "events/s", "speed-up"):
        table.add_column(name, justify="left" if name == "path" else "right")
    table.add_row(
        f"core, best of {core['best_of']}",
        f"{r['events']:,}",
        f"{r['lines']:,}",
        f"{core['seconds']:.4f}",
        f"{core['events_per_s']:,.0f}",
        f"{r['speedup']:,.1f}x",
    )
    table.add_row(
        "  group by line",
        "",
        "",
        f"{core['group_seconds']:.4f}",
        f"{r['events'] / core['group_seconds']:,.0f}" if core["group_seconds"] else "",
        "",
    )
    table.add_row("  drain", "", "", f"{core['drain_seconds']:.4f}", "", "")
    if loop["extrapolated"]:
        label = f"Python loop (* timed {loop['events_timed']:,}, extrapolated)"
    else:
        label = "Python loop"
    table.add_row(
        label,
        f"{r['events']:,}",
        f"{r['lines']:,}",
        f"{loop['seconds_for_all_events']:.3f}" + ("*" if loop["extrapolated"] else ""),
        f"{loop['events_per_s']:,.0f}",
        "1.0x",
    )
    console.print(table)
    console.print(
        f"python {r['python']}, numpy {r['numpy']}, nproc {r['nproc']}, "
        f"OPENBLAS_CORETYPE={r['openblas_coretype']}; "
        f"{r['lines_in_overage']:,} lines in overage, {r['unlimited_buckets']:,} unlimited buckets"
    )
    if r["agree"]:
        console.print(
            f"[green]Paths agree[/green] on {r['checked_events']:,} events: "
            "debit per bucket, overage per line, conservation."
        )
    else:
        console.print(f"[bold red]Paths DIFFER[/bold red]: {r['checks']}")
    verdict = "[green]PASS[/green]" if r["pass"] else "[bold red]FAIL[/bold red]"
    console.print(
        f"{verdict}: core {core['events_per_s']:,.0f} events/s "
        f"against a target of {r['target_events_per_s']:,} events/s"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="usage events (default 1e6)")
    p.add_argument("--lines", type=int, default=100_000, help="lines (default 1e5)")
    p.add_argument("--seed", type=int, default=20260101, help="random seed")
    p.add_argument(
        "--loop-budget",
        type=float,
        default=LOOP_BUDGET_S,
        help="seconds the Python loop may take before it is sampled and extrapolated",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args(argv)
    if args.events < 1 or args.lines < 1:
        p.error("--events and --lines must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
