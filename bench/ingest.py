"""Benchmark of bulk usage ingestion (issue 20): `carryover ingest` against the floor.

One run, one machine, the same generated files, on SQLite and on PostgreSQL:

- the month (the default workload: every preset, 112 calendars, boundaries
  inside the month, late and IMSI-named events):
  - (a) `carryover ingest usage.csv --json`, the command users run, as a
    subprocess, timed wall clock (process start included) with its peak RSS
    (`os.wait4`). The subprocess is started by a small launcher process: Linux
    carries the forking process's resident size into the child's peak
    (`ru_maxrss` survives `exec`), so a child forked from this script, which
    holds the whole workload, would report this script's size (measured: a
    1.5 GB parent gave `python -c pass` a peak of 1,510 MiB). Its fixed cost is
    that of an `ingest` of an empty file; "net" below is wall minus that cost;
  - the re-ingest of the same usage.csv right after (a): every row a duplicate;
  - (b) the floor: the same rows (the columns of `usage_events`) bulk-loaded
    into a bare table with no rating and no index: read the CSV with pyarrow,
    resolve each line, format the instants, then SQLite `executemany` in one
    transaction with the engine's PRAGMAs, or PostgreSQL `COPY` (psycopg
    `cursor.copy`). (b') is the same load into a table with the keys of
    `usage_events`: what (a) is held against;
  - (c) the naive path: `ledger_ops.record_usage` once per row (its own
    transaction each) on the first rows of the file, extrapolated to all rows;
    (r) `read_usage` alone;
  - a cycle rollover: after the month, one small event per line just after that
    line's next bill-cycle boundary, ingested with the CLI, so every line crosses
    its boundary in one run. The rows it writes are counted in the database
    (before/after, per table) and the same rows are then written into bare
    copies of those tables (no key, no index): the rollover's floor;
- the plain month: one plan (att-mobile-share-15gb), one account per line, one
  calendar (cycle day 1, UTC), events in time order inside one cycle
  (2 to 29 September 2026), no late event, lines named by MSISDN. The lines are
  opened at the start of that cycle (nothing before it to roll over), and one
  small event per line in its first minutes is ingested before the clock starts
  (untimed: counters and cursors exist, as mid-month); the bench checks that the
  month wrote no boundary rows. (a), (b') and the re-ingest are measured on it.

After (a), after the rollover and on the plain month the script checks balances
on a sample of 200 lines: usage events == debits + overage per line, and every
bucket's ledger fold == its stored `remaining`; plus the stored event count and
bytes against the files; a re-ingest must count every row a duplicate and
write nothing, and the plain month must write no boundary rows. It exits 1 if a
check fails (or a run crashes); targets are reported as PASS/FAIL and do not
change the exit status.

    .venv/bin/python bench/ingest.py                      # 1,000,000 events, 100,000 lines
    .venv/bin/python bench/ingest.py --events 20000 --lines 2000 --json   # smoke run
    .venv/bin/python bench/ingest.py --profile            # + where the time goes (SQLite)
    .venv/bin/python bench/ingest.py --save /tmp/1m.json  # then, for the "flat" target:
    .venv/bin/python bench/ingest.py --events 10000000 --ingest-only --compare /tmp/1m.json

See docs/performance.md ("Bulk ingestion") for measured numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

I64 = np.int64
US = 1_000_000
KB = 1024
MB = 1024**2
GB = 1024**3

MONTH_START = datetime(2026, 9, 1, tzinfo=UTC)
MONTH_DAYS = 30
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # the clock handed to line import
# Every preset, each line on its own plan (no family pool accounts: those take the
# object-book path by design and are not what this benchmark is about).
PLANS = {
    "tmobile-data-stash-10gb": 0.20,
    "tmobile-go5g": 0.18,
    "china-mobile-jiezhuan-20gb": 0.15,
    "verizon-carryover-8gb": 0.15,
    "att-mobile-share-15gb": 0.12,
    "att-mobile-share-25gb": 0.10,
    "travel-5gb-30d": 0.10,
}
ZONES = {"UTC": 0.55, "Europe/Berlin": 0.2, "America/New_York": 0.15, "Asia/Shanghai": 0.10}
GRACE_US = 48 * 3600 * US  # DEFAULT_GRACE: accounts made by line import get it
LATE_SHARE = 0.005  # events that arrive 1-40 h after their instant (grace is 48 h)
NAIVE_SAMPLE = 20_000
CHUNK_ROWS = 200_000  # the CLI's default --chunk-rows; the floor loads in slices of this
CHECK_LINES = 200
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# The plain month: one plan, one calendar, one cycle, nothing late.
PLAIN_PLAN = "att-mobile-share-15gb"
PLAIN_FIRST_DAY = datetime(2026, 9, 2, tzinfo=UTC)  # events from here ...
PLAIN_DAYS = 28  # ... to the end of 29 September; the cycle runs to 1 October
WARMUP_BYTES = 1 * KB

# Targets of issue 20 ("Ingest at the speed of the disk"). CLI times are judged net
# of the CLI's fixed cost (an ingest of an empty file, measured in the same run).
TARGET_FLOOR_RATIO = 2.5  # the month: net (a) / (b')
TARGET_PLAIN_RATIO = 2.0  # the plain month: net (a) / (b')
TARGET_DUPLICATE_SHARE = 0.20  # net re-ingest / net first ingest
TARGET_ROLLOVER_FLOOR_RATIO = 2.0  # net rollover / the bare write of its rows
TARGET_ROLLOVER_S = 3.5  # net rollover on SQLite, for ...
TARGET_ROLLOVER_LINES = 100_000  # ... this many lines (scaled linearly to --lines)
TARGET_FLAT_SHARE = 0.85  # the 10,000,000-event rate against the 1,000,000-event one
TARGET_RSS = 1 * GB
# Ledger entries a bill-cycle boundary writes (the plain month must write none).
BOUNDARY_KINDS = ("grant", "rollover_out", "rollover_in", "expire", "forfeit")

USAGE_COLUMNS = ("event_id", "account_id", "line", "at", "received_at", "effective_at",
                 "amount", "unit", "rating_group", "late")


class BenchError(RuntimeError):
    """A run that did not complete: the balances cannot be vouched for."""


# --------------------------------------------------------------------------- workload


@dataclass
class Workload:
    # lines
    msisdn: list[str]
    imsi: list[str]
    account: np.ndarray  # int64[L] account index of each line
    plan: list[str]
    start_us: np.ndarray  # int64[L]
    cycle_day: np.ndarray  # int64[A]
    zone: list[str]  # [A]
    # events, in file order (received_at, then at)
    event_id: list[str]
    line: np.ndarray  # int64[E] line index
    ident: list[str]  # what the file says: MSISDN or IMSI
    at_us: np.ndarray
    received_us: np.ndarray
    amount: np.ndarray
    rating_group: list[str | None]
    straddles: np.ndarray  # bool[E]: arrives after its cycle's end (within grace)
    # rollover: one event per line just after its next boundary
    roll_at_us: np.ndarray  # int64[L]
    stats: dict = field(default_factory=dict)

    @property
    def n_lines(self) -> int:
        return len(self.msisdn)

    @property
    def n_events(self) -> int:
        return len(self.event_id)


def _calendar_ends(day: int, zone: str, lo: datetime, hi: datetime) -> np.ndarray:
    """Boundaries of one (bill-cycle day, zone) calendar from before `lo` to after `hi`, µs."""
    from carryover.domain.cycles import CycleCalendar

    calendar = CycleCalendar(day, zone)
    boundary, _ = calendar.cycle_at(lo)
    out = [boundary]
    while out[-1] <= hi:
        out.append(calendar.next_boundary(out[-1]))
    return np.array([int((b - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * US
                     for b in out], dtype=I64)


def make_workload(n_events: int, n_lines: int, seed: int) -> Workload:
    """A deterministic month of data usage for `n_lines` lines (numpy seed `seed`).

    Lines: accounts of 1-4 lines (mostly 1), bill-cycle days 1..28, four zones
    (mostly UTC), every preset; each line opened 1-60 days before the month.
    Events: sizes log-normal around 1 MB clipped to 10 KB-50 MB; lines drawn with
    Pareto weights plus 1 % heavy users; received 1-15 min after the instant, and
    0.5 % of them 1-40 h later (inside the 48 h grace); 10 % name the line by
    IMSI, the rest by MSISDN; 3 % are hotspot traffic. The file is in arrival
    (received_at) order, as a packet core writes it.
    """
    rng = np.random.default_rng(seed)
    month0 = int(MONTH_START.timestamp()) * US
    month1 = month0 + MONTH_DAYS * 86_400 * US

    # -- accounts and lines
    sizes = rng.choice(np.array([1, 2, 3, 4]), size=n_lines, p=[0.72, 0.18, 0.07, 0.03])
    account = np.repeat(np.arange(n_lines, dtype=I64), sizes)[:n_lines]
    n_accounts = int(account[-1]) + 1
    cycle_day = rng.integers(1, 29, size=n_accounts).astype(I64)
    zone_names = list(ZONES)
    zone_idx = rng.choice(len(zone_names), size=n_accounts, p=list(ZONES.values()))
    zone = [zone_names[z] for z in zone_idx.tolist()]
    plan_names = list(PLANS)
    plan_idx = rng.choice(len(plan_names), size=n_lines, p=list(PLANS.values()))
    plan = [plan_names[p] for p in plan_idx.tolist()]
    start_us = month0 - rng.integers(86_400, 60 * 86_400, size=n_lines).astype(I64) * US
    msisdn = [f"+4915{i:09d}" for i in range(n_lines)]
    imsi = [f"26201{i:010d}" for i in range(n_lines)]

    # -- events
    weight = rng.pareto(1.2, size=n_lines) + 1.0
    heavy = rng.random(n_lines) < 0.01
    weight[heavy] *= 20.0
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    line = np.searchsorted(cdf, rng.random(n_events), side="right").astype(I64)
    np.minimum(line, n_lines - 1, out=line)
    at = month0 + rng.integers(0, MONTH_DAYS * 86_400, size=n_events).astype(I64) * US
    delay = 60 + np.minimum(rng.exponential(180.0, size=n_events), 840.0).astype(I64)
    late = rng.random(n_events) < LATE_SHARE
    delay[late] = rng.integers(3600, 40 * 3600, size=int(late.sum()))
    received = at + delay * US
    size = np.exp(rng.normal(np.log(1 * MB), 1.6, size=n_events))
    amount = np.clip(size, 10 * KB, 50 * MB).astype(I64)
    by_imsi = rng.random(n_events) < 0.10
    hotspot = rng.random(n_events) < 0.03
    order = np.lexsort((at, received))  # arrival order
    line, at, received, amount = line[order], at[order], received[order], amount[order]
    by_imsi, hotspot = by_imsi[order], hotspot[order]

    # -- calendars: which events arrive after their cycle ended; the rollover instants
    lo, hi = MONTH_START - timedelta(days=70), MONTH_START + timedelta(days=100)
    calendar_of_account = cycle_day * len(zone_names) + zone_idx
    straddles = np.zeros(n_events, dtype=bool)
    roll_at = np.zeros(n_lines, dtype=I64)
    ev_calendar = calendar_of_account[account[line]]
    line_calendar = calendar_of_account[account]
    for c in np.unique(calendar_of_account).tolist():
        ends = _calendar_ends(c // len(zone_names), zone_names[c % len(zone_names)], lo, hi)
        mine = np.flatnonzero(ev_calendar == c)
        cycle_end = ends[np.searchsorted(ends, at[mine], side="right")]
        straddles[mine] = received[mine] >= cycle_end
        # The first boundary after every event of the month (>= the month's end).
        roll_at[line_calendar == c] = ends[np.searchsorted(ends, month1 - 1, side="right")]
    roll_at = roll_at + (60 + rng.integers(0, 600, size=n_lines)).astype(I64) * US

    ident = [imsi[x] if b else msisdn[x] for x, b in
             zip(line.tolist(), by_imsi.tolist(), strict=True)]
    counts = np.bincount(line, minlength=n_lines)
    top = np.sort(counts)[::-1]
    stats = {
        "accounts": n_accounts,
        "calendars": int(np.unique(calendar_of_account).size),
        "lines_with_events": int((counts > 0).sum()),
        "max_events_per_line": int(top[0]) if n_lines else 0,
        "median_events_per_line": float(np.median(counts)),
        "busiest_1pct_share": float(top[: max(1, n_lines // 100)].sum() / max(1, n_events)),
        "usage_bytes": int(amount.sum()),
        "median_event_bytes": float(np.median(amount)),
        "p99_event_bytes": float(np.percentile(amount, 99)),
        "delayed_1_40h": int(late.sum()),
        "after_cycle_end_within_grace": int(straddles.sum()),
        "by_imsi": int(by_imsi.sum()),
        "hotspot": int(hotspot.sum()),
        "plans": {p: int((plan_idx == k).sum()) for k, p in enumerate(plan_names)},
        "zones": {z: int((zone_idx == k).sum()) for k, z in enumerate(zone_names)},
    }
    return Workload(
        msisdn=msisdn, imsi=imsi, account=account, plan=plan, start_us=start_us,
        cycle_day=cycle_day, zone=zone,
        event_id=[f"cdr-{i:09d}" for i in range(n_events)], line=line, ident=ident,
        at_us=at, received_us=received, amount=amount,
        rating_group=["hotspot" if h else None for h in hotspot.tolist()],
        straddles=straddles, roll_at_us=roll_at, stats=stats)


def _iso(us: np.ndarray) -> np.ndarray:
    """µs since the epoch as ISO 8601 UTC text to the second, e.g. 2026-09-01T00:00:00Z."""
    text = np.datetime_as_string(us.astype("datetime64[us]").astype("datetime64[s]"), unit="s")
    return np.char.add(text, "Z")


def _write_csv(path: Path, columns: dict[str, object]) -> None:
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


@dataclass
class Files:
    lines: Path  # every line, with its account's cycle day and zone (for reading)
    line_groups: list[tuple[int, str, Path]]  # (cycle day, zone, file) for `line import`
    usage: Path
    rollover: Path
    empty: Path


def write_files(w: Workload, folder: Path) -> Files:
    folder.mkdir(parents=True, exist_ok=True)
    acct = w.account.tolist()
    names = [f"acct-{a:07d}" for a in acct]
    days = w.cycle_day[w.account].tolist()
    zones = [w.zone[a] for a in acct]
    starts = _iso(w.start_us).tolist()
    lines = folder / "lines.csv"
    _write_csv(lines, {"msisdn": w.msisdn, "imsi": w.imsi, "account": names, "plan": w.plan,
                       "start": starts, "cycle_day": days, "timezone": zones})
    # `line import` takes one default cycle day and zone per run: one file per calendar.
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(days, zones, strict=True)):
        groups[key].append(i)
    group_dir = folder / "lines-by-calendar"
    group_dir.mkdir(exist_ok=True)
    line_groups = []
    for (day, zone), rows in sorted(groups.items()):
        path = group_dir / f"day{day:02d}-{zone.replace('/', '_')}.csv"
        _write_csv(path, {"msisdn": [w.msisdn[i] for i in rows],
                          "imsi": [w.imsi[i] for i in rows],
                          "account": [names[i] for i in rows],
                          "plan": [w.plan[i] for i in rows],
                          "start": [starts[i] for i in rows]})
        line_groups.append((day, zone, path))
    usage = folder / "usage.csv"
    _write_csv(usage, {"event_id": w.event_id, "line": w.ident, "at": _iso(w.at_us).tolist(),
                       "received_at": _iso(w.received_us).tolist(),
                       "bytes": w.amount, "rating_group": w.rating_group})
    order = np.argsort(w.roll_at_us, kind="stable")
    rollover = folder / "rollover.csv"
    _write_csv(rollover, {
        "event_id": [f"roll-{i:07d}" for i in order.tolist()],
        "line": [w.msisdn[i] for i in order.tolist()],
        "at": _iso(w.roll_at_us[order]).tolist(),
        "received_at": _iso(w.roll_at_us[order] + 120 * US).tolist(),
        "bytes": np.full(len(order), 10 * KB, dtype=I64)})
    empty = folder / "empty.csv"
    empty.write_text("event_id,line,at,received_at,bytes,rating_group\n")
    return Files(lines, line_groups, usage, rollover, empty)


def make_plain_workload(n_events: int, n_lines: int, seed: int) -> Workload:
    """The plain month: `n_events` events over `n_lines` lines inside one cycle.

    Every line is on PLAIN_PLAN, in an account of its own, on one calendar (cycle
    day 1, UTC), opened at 1 September 2026 00:00 UTC, the start of its first cycle:
    no line has a cycle before it, so nothing rolls over or expires. Events: lines drawn
    uniformly, instants uniform from 2 September to the end of 29 September, sizes
    as the month's (log-normal around 1 MB, 10 KB-50 MB), received 1-5 min after
    the instant, the file in time order; every line named by MSISDN, no rating
    group. `roll_at_us` holds the warm-up instant of each line, 1-10 min into the
    cycle: untimed, it gives every line its counters and cursor, as in mid-month.
    """
    rng = np.random.default_rng(seed + 20)
    cycle0 = int(MONTH_START.timestamp()) * US
    first = int(PLAIN_FIRST_DAY.timestamp()) * US
    msisdn = [f"+4917{i:09d}" for i in range(n_lines)]
    start_us = np.full(n_lines, cycle0, dtype=I64)
    line = rng.integers(0, n_lines, size=n_events).astype(I64)
    at = first + rng.integers(0, PLAIN_DAYS * 86_400, size=n_events).astype(I64) * US
    received = at + rng.integers(60, 300, size=n_events).astype(I64) * US
    size = np.exp(rng.normal(np.log(1 * MB), 1.6, size=n_events))
    amount = np.clip(size, 10 * KB, 50 * MB).astype(I64)
    order = np.lexsort((received, at))  # time order
    line, at, received, amount = line[order], at[order], received[order], amount[order]
    warmup = cycle0 + rng.integers(60, 600, size=n_lines).astype(I64) * US
    counts = np.bincount(line, minlength=n_lines)
    by_line = np.bincount(line, weights=amount, minlength=n_lines)
    stats = {
        "plan": PLAIN_PLAN, "accounts": n_lines, "calendars": 1,
        "lines_with_events": int((counts > 0).sum()),
        "max_events_per_line": int(counts.max()) if n_lines else 0,
        "max_bytes_per_line": int(by_line.max()) if n_lines else 0,
        "usage_bytes": int(amount.sum()),
        "first_at": str(_iso(at[:1])[0]) if n_events else None,
        "last_received_at": str(_iso(received[-1:])[0]) if n_events else None,
    }
    return Workload(
        msisdn=msisdn, imsi=[""] * n_lines, account=np.arange(n_lines, dtype=I64),
        plan=[PLAIN_PLAN] * n_lines, start_us=start_us, cycle_day=np.ones(n_lines, dtype=I64),
        zone=["UTC"] * n_lines, event_id=[f"plain-{i:09d}" for i in range(n_events)],
        line=line, ident=[msisdn[x] for x in line.tolist()], at_us=at, received_us=received,
        amount=amount, rating_group=[None] * n_events,
        straddles=np.zeros(n_events, dtype=bool), roll_at_us=warmup, stats=stats)


@dataclass
class PlainFiles:
    lines: Path  # for `line import` with cycle day 1, UTC
    warmup: Path  # one small event per line 1-10 min into the cycle
    usage: Path
    empty: Path


def write_plain_files(w: Workload, folder: Path) -> PlainFiles:
    folder.mkdir(parents=True, exist_ok=True)
    lines = folder / "plain-lines.csv"
    _write_csv(lines, {"msisdn": w.msisdn, "imsi": w.imsi,
                       "account": [f"plain-{a:07d}" for a in w.account.tolist()],
                       "plan": w.plan, "start": _iso(w.start_us).tolist()})
    order = np.argsort(w.roll_at_us, kind="stable")
    warmup = folder / "plain-warmup.csv"
    _write_csv(warmup, {
        "event_id": [f"warmup-{i:07d}" for i in order.tolist()],
        "line": [w.msisdn[i] for i in order.tolist()],
        "at": _iso(w.roll_at_us[order]).tolist(),
        "received_at": _iso(w.roll_at_us[order] + 60 * US).tolist(),
        "bytes": np.full(len(order), WARMUP_BYTES, dtype=I64)})
    usage = folder / "plain-usage.csv"
    _write_csv(usage, {"event_id": w.event_id, "line": w.ident, "at": _iso(w.at_us).tolist(),
                       "received_at": _iso(w.received_us).tolist(), "bytes": w.amount,
                       "rating_group": pa.array(w.rating_group, type=pa.string())})
    empty = folder / "empty.csv"
    empty.write_text("event_id,line,at,received_at,bytes,rating_group\n")
    return PlainFiles(lines, warmup, usage, empty)


# --------------------------------------------------------------------------- helpers


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "carryover"
    return [str(script)] if script.exists() else [sys.executable, "-m", "carryover.cli"]


@dataclass
class CliRun:
    seconds: float
    rss_bytes: int
    summary: dict


# The launcher: reads one JSON job per line, runs it, answers with its exit status,
# wall seconds and peak RSS. It is a fresh interpreter (exec resets its address
# space) that imports nothing big, so what it adds to a child's `ru_maxrss` (its
# own size when it forks, about 10 MB) is far below what is measured.
_LAUNCHER_CODE = r"""
import json, os, subprocess, sys, time
for text in sys.stdin:
    job = json.loads(text)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(job["argv"], stdout=out, stderr=err, env=job["env"],
                             cwd=job["cwd"])
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": seconds,
                      "maxrss_kib": usage.ru_maxrss}), flush=True)
"""


class Launcher:
    """Starts subprocesses from a small process, so their peak RSS is their own."""

    _proc: subprocess.Popen | None = None

    @classmethod
    def start(cls) -> None:
        if cls._proc is None or cls._proc.poll() is not None:
            cls._proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER_CODE],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)

    @classmethod
    def run(cls, argv: list[str], env: dict, cwd: Path, out: Path, err: Path) -> dict:
        cls.start()
        job = {"argv": argv, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
        cls._proc.stdin.write(json.dumps(job) + "\n")
        cls._proc.stdin.flush()
        answer = cls._proc.stdout.readline()
        if not answer:
            raise BenchError("the launcher process died")
        return json.loads(answer)

    @classmethod
    def stop(cls) -> None:
        if cls._proc is not None:
            cls._proc.stdin.close()
            cls._proc.wait(timeout=30)
            cls._proc = None


def run_cli(url: str, args: list[str], folder: Path, tag: str) -> CliRun:
    """`carryover ARGS --json` as a subprocess of the launcher: wall time, peak RSS
    (os.wait4), its summary."""
    env = {**os.environ, "CARRYOVER_DATABASE_URL": url}
    out_path, err_path = folder / f"{tag}.out", folder / f"{tag}.err"
    done = Launcher.run([*_cli(), *args, "--json"], env, folder, out_path, err_path)
    code, seconds = done["code"], done["seconds"]
    if code != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise BenchError(f"carryover {' '.join(args)} exited {code}: " + " | ".join(tail))
    text = out_path.read_text()
    summary = json.loads(text) if text.strip() else {}
    return CliRun(seconds, done["maxrss_kib"] * 1024, summary)


def open_engine(url: str):
    from carryover.runtime import Carryover
    from carryover.settings import get_settings

    return Carryover(get_settings(database_url=url)).open()


def forget_engines() -> None:
    from carryover.store.engine import dispose_engines

    dispose_engines()


def provision(url: str, groups: list[tuple[int, str, Path]]) -> dict:
    """`line import` of every (cycle day, zone, file) (service called in-process), timed."""
    from carryover.services.ledger.line_import import import_lines
    from carryover.store.uow import UnitOfWork

    engine = open_engine(url)
    t0 = time.perf_counter()
    imported = rejected = 0
    for day, zone, path in groups:
        summary = import_lines(UnitOfWork(engine), path, day, zone, NOW)
        imported += summary.imported
        rejected += len(summary.rejected)
    seconds = time.perf_counter() - t0
    if rejected:
        raise BenchError(f"line import rejected {rejected} generated lines")
    return {"lines": imported, "files": len(groups), "seconds": seconds,
            "lines_per_s": _rate(imported, seconds)}


def sqlite_snapshot(db: Path, copy: Path) -> None:
    """Copy a quiescent SQLite database (its WAL folded in first)."""
    forget_engines()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db, copy)


# --------------------------------------------------------------------------- rows written

# Tables whose rows are rewritten in place, by their key; the others in WRITTEN_TABLES
# only grow (append-only, or new rows only), by their sequence column.
KEYED_TABLES = {"buckets": ("account_id", "id"),
                "counters": ("account_id", "cycle_start", "line", "unit", "name"),
                "accounts": ("id",)}
APPENDED_TABLES = {"usage_events": "seq", "ledger_entries": "seq", "outbox": "id"}
WRITTEN_TABLES = ("usage_events", "ledger_entries", "buckets", "counters", "outbox",
                  "accounts")
BENCH_TABLES = ("usage_bare", "usage_keys")  # the floors' own tables


def _pg_conninfo(url: str) -> str:
    from carryover.store.engine import normalize_url

    return normalize_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class Tables:
    """Plain DB-API reads of a carryover database, to count what a run wrote (untimed).

    On PostgreSQL every column is read as text (what COPY takes back); on SQLite as
    stored."""

    def __init__(self, url: str) -> None:
        from carryover.store.engine import normalize_url

        parsed = normalize_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.conn = sqlite3.connect(parsed.database)
        else:
            import psycopg

            self.conn = psycopg.connect(_pg_conninfo(url), autocommit=True)
        self._columns: dict[str, list[str]] = {}

    def close(self) -> None:
        self.conn.close()

    def names(self) -> list[str]:
        if self.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        return sorted(r[0] for r in self.conn.execute(sql).fetchall()
                      if r[0] not in BENCH_TABLES and not r[0].startswith("bare_"))

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            if self.dialect == "sqlite":
                rows = self.conn.execute(f"PRAGMA table_info({table})").fetchall()
                self._columns[table] = [r[1] for r in rows]
            else:
                rows = self.conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = %s "
                    "ORDER BY ordinal_position", (table,)).fetchall()
                self._columns[table] = [r[0] for r in rows]
        return self._columns[table]

    def types(self, table: str) -> list[str]:
        """Declared column types (SQLite only: for the bare copies)."""
        return [r[2] for r in self.conn.execute(f"PRAGMA table_info({table})").fetchall()]

    def scalar(self, sql: str):
        return self.conn.execute(sql).fetchone()[0]

    def rows(self, table: str, where: str = "") -> Iterator[tuple]:
        cols = self.columns(table)
        what = ", ".join(f'"{c}"' if self.dialect == "sqlite" else f'"{c}"::text' for c in cols)
        cur = self.conn.execute(f"SELECT {what} FROM {table} {where}")
        while True:
            batch = cur.fetchmany(50_000)
            if not batch:
                return
            yield from batch


@dataclass
class Before:
    counts: dict[str, int]
    last: dict[str, int]  # APPENDED_TABLES: the highest sequence number
    rows: dict[str, dict[tuple, int]]  # KEYED_TABLES: key -> hash of the row


def writes_before(url: str) -> Before:
    t = Tables(url)
    try:
        counts = {name: int(t.scalar(f"SELECT count(*) FROM {name}")) for name in t.names()}
        last = {name: int(t.scalar(f"SELECT coalesce(max({col}), 0) FROM {name}"))
                for name, col in APPENDED_TABLES.items()}
        rows = {}
        for name, key in KEYED_TABLES.items():
            k = [t.columns(name).index(c) for c in key]
            rows[name] = {tuple(r[i] for i in k): hash(r) for r in t.rows(name)}
    finally:
        t.close()
    return Before(counts, last, rows)


def writes_after(url: str, before: Before, keep_rows: bool) -> dict:
    """What was written since `before`, per table, counted in the database: rows
    appended, rows inserted, updated and deleted by key, ledger entries by kind, and
    the row counts of every other table that changed. With `keep_rows`, the written
    rows themselves (as read back) under "rows", for the floor."""
    t = Tables(url)
    out: dict = {"tables": {}, "rows": {}}
    try:
        counts = {name: int(t.scalar(f"SELECT count(*) FROM {name}")) for name in t.names()}
        for name, col in APPENDED_TABLES.items():
            new = list(t.rows(name, f"WHERE {col} > {before.last[name]}"))
            out["tables"][name] = {"inserted": len(new), "updated": 0, "deleted": 0}
            if name == "ledger_entries":
                kind = t.columns(name).index("kind")
                by_kind: dict[str, int] = defaultdict(int)
                for r in new:
                    by_kind[str(r[kind])] += 1
                out["ledger_by_kind"] = dict(sorted(by_kind.items()))
            if keep_rows:
                out["rows"][name] = new
        for name, key in KEYED_TABLES.items():
            k = [t.columns(name).index(c) for c in key]
            old = before.rows[name]
            seen = 0
            inserted, updated = [], []
            for r in t.rows(name):
                was = old.get(tuple(r[i] for i in k))
                if was is None:
                    inserted.append(r)
                else:
                    seen += 1
                    if was != hash(r):
                        updated.append(r)
            out["tables"][name] = {"inserted": len(inserted), "updated": len(updated),
                                   "deleted": len(old) - seen}
            if keep_rows:
                out["rows"][name] = inserted + updated
    finally:
        t.close()
    out["others_changed"] = {name: counts.get(name, 0) - before.counts.get(name, 0)
                             for name in sorted({*counts, *before.counts})
                             if name not in WRITTEN_TABLES
                             and counts.get(name, 0) != before.counts.get(name, 0)}
    out["total"] = sum(v["inserted"] + v["updated"] + v["deleted"]
                       for v in out["tables"].values())
    if not keep_rows:
        del out["rows"]
    return out


def floor_writes(url: str, written: dict, folder: Path) -> dict:
    """The rollover's floor: the rows it wrote (inserted or updated, as read back after
    it) inserted into bare copies of their tables (same columns, no key, no index, no
    constraint but NOT NULL on PostgreSQL), in one transaction: SQLite `executemany`
    with the engine's PRAGMAs into a database of its own, PostgreSQL `COPY` (psycopg
    `write_row`) into tables beside the originals. Timed from the first insert to the
    commit; the rows are read before the clock starts. An update is counted as the
    write of one row (the floor does not look the row up)."""
    rows: dict[str, list[tuple]] = written["rows"]
    src = Tables(url)
    try:
        columns = {name: src.columns(name) for name in rows}
        types = ({name: src.types(name) for name in rows} if src.dialect == "sqlite" else {})
        dialect = src.dialect
    finally:
        src.close()
    per_table = {name: len(r) for name, r in rows.items()}
    n = sum(per_table.values())
    if dialect == "sqlite":
        db = folder / "rollover_floor.db"
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
            for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL",
                           "cache_size = -65536", "temp_store = MEMORY"):
                conn.execute(f"PRAGMA {pragma}")
            for name in rows:
                cols = ", ".join(f'"{c}" {ty}' for c, ty in
                                 zip(columns[name], types[name], strict=True))
                conn.execute(f"CREATE TABLE bare_{name} ({cols})")
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for name, part in rows.items():
                marks = ", ".join("?" * len(columns[name]))
                conn.executemany(f"INSERT INTO bare_{name} VALUES ({marks})", part)
            conn.execute("COMMIT")
            seconds = time.perf_counter() - t0
            stored = sum(conn.execute(f"SELECT count(*) FROM bare_{name}").fetchone()[0]
                         for name in rows)
    else:
        import psycopg

        with psycopg.connect(_pg_conninfo(url)) as conn:
            with conn.cursor() as cur:
                for name in rows:
                    cur.execute(f"DROP TABLE IF EXISTS bare_{name}")
                    cur.execute(f"CREATE TABLE bare_{name} (LIKE {name})")
            conn.commit()
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                for name, part in rows.items():
                    cols = ", ".join(f'"{c}"' for c in columns[name])
                    with cur.copy(f"COPY bare_{name} ({cols}) FROM STDIN") as copy:
                        for row in part:
                            copy.write_row(row)
            conn.commit()
            seconds = time.perf_counter() - t0
            stored = sum(conn.execute(f"SELECT count(*) FROM bare_{name}").fetchone()[0]
                         for name in rows)
    if stored != n:
        raise BenchError(f"the rollover's floor tables hold {stored} rows, wrote {n}")
    return {"rows": n, "per_table": per_table, "seconds": seconds, "rows_per_s": _rate(n, seconds)}


# --------------------------------------------------------------------------- consistency


def check_consistency(url: str, w: Workload, sample: list[int], events: int,
                      usage_bytes: int) -> dict:
    """Balances of `sample` lines: usage == debits + overage; each bucket's fold == remaining."""
    from sqlalchemy import bindparam, create_engine, text

    from carryover.domain.ledger import INFLOWS, OUTFLOWS, EntryKind
    from carryover.store.engine import normalize_url

    ins = ", ".join(f"'{k}'" for k in sorted({*INFLOWS, EntryKind.ADJUST}))
    outs = ", ".join(f"'{k}'" for k in sorted(OUTFLOWS))
    usage_kinds = f"'{EntryKind.DEBIT}', '{EntryKind.OVERAGE}'"
    engine = create_engine(normalize_url(url))
    problems: list[str] = []
    buckets_checked = unlimited = 0
    try:
        with engine.connect() as conn:
            stored, stored_bytes = conn.execute(text(
                "SELECT count(*), coalesce(sum(amount), 0) FROM usage_events")).one()
            if (int(stored), int(stored_bytes)) != (events, usage_bytes):
                problems.append(f"usage_events holds {stored} events / {stored_bytes} bytes, "
                                f"expected {events} / {usage_bytes}")
            msisdns = [w.msisdn[i] for i in sample]
            rows = conn.execute(text(
                "SELECT id, account_id FROM lines WHERE msisdn IN :m").bindparams(
                    bindparam("m", expanding=True)), {"m": msisdns}).all()
            if len(rows) != len(sample):
                problems.append(f"{len(sample) - len(rows)} sampled lines not found")
            for line_id, account_id in rows:
                p = {"a": account_id, "l": line_id}
                used = conn.execute(text(
                    "SELECT coalesce(sum(amount), 0) FROM usage_events "
                    "WHERE account_id = :a AND line = :l"), p).scalar_one()
                rated = conn.execute(text(
                    f"SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = :a "
                    f"AND line = :l AND kind IN ({usage_kinds})"), p).scalar_one()
                if int(used) != int(rated):
                    problems.append(f"line {line_id}: usage {used} != debits + overage {rated}")
                fold = dict(conn.execute(text(
                    f"SELECT bucket_id, sum(CASE WHEN kind IN ({ins}) THEN amount "
                    f"WHEN kind IN ({outs}) THEN -amount ELSE 0 END) FROM ledger_entries "
                    f"WHERE account_id = :a AND bucket_id IS NOT NULL GROUP BY bucket_id"),
                    p).all())
                for bucket_id, remaining in conn.execute(text(
                        "SELECT id, remaining FROM buckets WHERE account_id = :a AND owner = :l"),
                        p).all():
                    if remaining is None:  # unlimited: no balance to fold
                        unlimited += 1
                        continue
                    buckets_checked += 1
                    if int(fold.get(bucket_id, 0)) != int(remaining):
                        problems.append(f"bucket {bucket_id} of {line_id}: ledger fold "
                                        f"{fold.get(bucket_id, 0)} != remaining {remaining}")
    finally:
        engine.dispose()
    return {"ok": not problems, "lines_checked": len(sample), "buckets_checked": buckets_checked,
            "unlimited_buckets_skipped": unlimited, "events_stored_expected": events,
            "problems": problems[:10], "problem_count": len(problems)}


def check_sample(w: Workload, seed: int) -> list[int]:
    """200 lines with usage, a quarter of them among lines with events after a cycle end."""
    rng = np.random.default_rng(seed + 1)
    used = np.unique(w.line)
    late = np.unique(w.line[w.straddles])
    n_late = min(len(late), CHECK_LINES // 4)
    first = rng.choice(late, size=n_late, replace=False) if n_late else np.empty(0, I64)
    rest = np.setdiff1d(used, first)
    more = rng.choice(rest, size=min(len(rest), CHECK_LINES - n_late), replace=False)
    return sorted(np.concatenate([first, more]).astype(int).tolist())


# --------------------------------------------------------------------------- the floor


def _line_directory(rows: list[tuple]) -> tuple[dict[str, int], list[str], list[int]]:
    index: dict[str, int] = {}
    ids, accounts = [], []
    for k, (line_id, msisdn, imsi, account_id) in enumerate(rows):
        index[msisdn] = k
        if imsi:
            index[imsi] = k
        ids.append(line_id)
        accounts.append(account_id)
    return index, ids, accounts


def _instants(us: np.ndarray, dialect: str) -> list[str]:
    """Instants as each backend stores them (what raw_cursor.Raw.instants writes)."""
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    if dialect == "sqlite":
        return np.char.replace(text, "T", " ").tolist()
    return np.char.add(text, "+00:00").tolist()


def floor_rows(usage: Path, directory: tuple, dialect: str) -> Iterator[list[tuple]]:
    """The file's rows as `usage_events` rows, CHUNK_ROWS at a time (no rating: late=False)."""
    index, ids, accounts = directory
    table = pacsv.read_csv(usage, convert_options=pacsv.ConvertOptions(column_types={
        "event_id": pa.string(), "line": pa.string(), "at": pa.timestamp("us", "UTC"),
        "received_at": pa.timestamp("us", "UTC"), "bytes": pa.int64(),
        "rating_group": pa.string()}))
    for start in range(0, table.num_rows, CHUNK_ROWS):
        part = table.slice(start, CHUNK_ROWS)
        k = [index[x] for x in part.column("line").to_pylist()]
        at = _instants(part.column("at").to_numpy().astype(I64), dialect)
        received = _instants(part.column("received_at").to_numpy().astype(I64), dialect)
        n = part.num_rows
        yield list(zip(part.column("event_id").to_pylist(), [accounts[i] for i in k],
                       [ids[i] for i in k], at, received, at,
                       part.column("bytes").to_pylist(), ["data"] * n,
                       part.column("rating_group").to_pylist(), [False] * n, strict=True))


_FLOOR_SQL = {
    "sqlite": ("event_id VARCHAR(200) NOT NULL, account_id INTEGER NOT NULL, "
               "line VARCHAR(64) NOT NULL, at DATETIME NOT NULL, received_at DATETIME, "
               "effective_at DATETIME NOT NULL, amount BIGINT NOT NULL, unit VARCHAR(8) NOT NULL, "
               "rating_group VARCHAR(64), late BOOLEAN NOT NULL"),
    "postgresql": ("event_id VARCHAR(200) NOT NULL, account_id INTEGER NOT NULL, "
                   "line VARCHAR(64) NOT NULL, at TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ, "
                   "effective_at TIMESTAMPTZ NOT NULL, amount BIGINT NOT NULL, "
                   "unit VARCHAR(8) NOT NULL, rating_group VARCHAR(64), late BOOLEAN NOT NULL"),
}
_KEYS_SQL = {
    "sqlite": ("seq INTEGER PRIMARY KEY AUTOINCREMENT, ", ", UNIQUE (event_id)"),
    "postgresql": ("seq BIGSERIAL PRIMARY KEY, ", ", UNIQUE (event_id)"),
}


def _floor_ddl(dialect: str, table: str, keys: bool) -> list[str]:
    head, tail = _KEYS_SQL[dialect] if keys else ("", "")
    ddl = [f"CREATE TABLE {table} ({head}{_FLOOR_SQL[dialect]}{tail})"]
    if keys:
        ddl.append(f"CREATE INDEX ix_{table}_account_effective ON {table} "
                   "(account_id, effective_at)")
    return ddl


def floor_sqlite(db: Path, usage: Path, source_db: Path, keys: bool) -> dict:
    """(b) on SQLite: executemany in one transaction, with the engine's PRAGMAs."""
    table = "usage_keys" if keys else "usage_bare"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        # What carryover.store.engine sets on every SQLite connection.
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        for ddl in _floor_ddl("sqlite", table, keys):
            conn.execute(ddl)
        verb = "INSERT OR IGNORE" if keys else "INSERT"
        sql = (f"{verb} INTO {table} ({', '.join(USAGE_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(USAGE_COLUMNS))})")
        prepare = insert = 0.0
        t0 = time.perf_counter()
        with contextlib.closing(sqlite3.connect(source_db)) as src:
            directory = _line_directory(
                src.execute("SELECT id, msisdn, imsi, account_id FROM lines").fetchall())
        conn.execute("BEGIN IMMEDIATE")
        rows = 0
        t1 = time.perf_counter()
        prepare += t1 - t0
        for part in floor_rows(usage, directory, "sqlite"):
            t2 = time.perf_counter()
            prepare += t2 - t1
            conn.executemany(sql, part)
            rows += len(part)
            t1 = time.perf_counter()
            insert += t1 - t2
        conn.execute("COMMIT")
        insert += time.perf_counter() - t1
        seconds = time.perf_counter() - t0
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if stored != rows:
        raise BenchError(f"floor table holds {stored} rows, loaded {rows}")
    return {"rows": rows, "seconds": seconds, "prepare_seconds": prepare,
            "insert_seconds": insert, "events_per_s": _rate(rows, seconds)}


def floor_postgres(url: str, usage: Path, keys: bool) -> dict:
    """(b) on PostgreSQL: COPY FROM STDIN (psycopg cursor.copy, write_row) in one transaction."""
    import psycopg

    from carryover.store.engine import normalize_url

    conninfo = normalize_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    table = "usage_keys" if keys else "usage_bare"
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            for ddl in _floor_ddl("postgresql", table, keys):
                cur.execute(ddl)
        conn.commit()
        prepare = insert = 0.0
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            directory = _line_directory(
                cur.execute("SELECT id, msisdn, imsi, account_id FROM lines").fetchall())
            rows = 0
            t1 = time.perf_counter()
            prepare += t1 - t0
            with cur.copy(f"COPY {table} ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
                for part in floor_rows(usage, directory, "postgresql"):
                    t2 = time.perf_counter()
                    prepare += t2 - t1
                    for row in part:
                        copy.write_row(row)
                    rows += len(part)
                    t1 = time.perf_counter()
                    insert += t1 - t2
        conn.commit()
        insert += time.perf_counter() - t1
        seconds = time.perf_counter() - t0
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if stored != rows:
        raise BenchError(f"floor table holds {stored} rows, loaded {rows}")
    return {"rows": rows, "seconds": seconds, "prepare_seconds": prepare,
            "insert_seconds": insert, "events_per_s": _rate(rows, seconds)}


# --------------------------------------------------------------------------- the naive path


def naive(url: str, w: Workload, sample: int) -> dict:
    """(c) `ledger_ops.record_usage` per row, on the first `sample` rows of the file."""
    from carryover.domain.columnar.state import from_us
    from carryover.services.errors import ServiceError
    from carryover.services.ledger.operations import record_usage
    from carryover.store.uow import UnitOfWork

    engine = open_engine(url)
    rows = [(w.ident[i], int(w.amount[i]), from_us(int(w.at_us[i])),
             from_us(int(w.received_us[i])), w.event_id[i], w.rating_group[i])
            for i in range(sample)]
    refused = 0
    t0 = time.perf_counter()
    for ident, amount, at, received, event_id, group in rows:
        try:
            record_usage(UnitOfWork(engine), ident, amount, at, received, event_id,
                         rating_group=group)
        except ServiceError:
            refused += 1
    seconds = time.perf_counter() - t0
    forget_engines()
    eps = _rate(sample, seconds)
    return {"sampled": sample, "seconds": seconds, "events_per_s": eps,
            "seconds_for_all": w.n_events / eps, "extrapolated": sample < w.n_events,
            "refused": refused}


def read_only(usage: Path) -> dict:
    """`read_usage` alone (parse and validate the file, no database), for reference."""
    from carryover.adapters.cdr_files import read_usage

    t0 = time.perf_counter()
    rows = rejects = 0
    for chunk, bad in read_usage(usage, chunk_rows=CHUNK_ROWS, now_us=int(NOW.timestamp()) * US):
        rows += len(chunk)
        rejects += len(bad)
    seconds = time.perf_counter() - t0
    return {"rows": rows, "rejects": rejects, "seconds": seconds,
            "events_per_s": _rate(rows, seconds)}


# --------------------------------------------------------------------------- one backend


def _cli_timing(run: CliRun, fixed: float, rows: int) -> dict:
    """A CLI run's wall seconds, its own `seconds`, and wall net of the fixed cost."""
    net = max(run.seconds - fixed, 1e-3)
    inner = run.summary.get("seconds")
    return {"rows": rows, "seconds": run.seconds, "net_seconds": net, "inner_seconds": inner,
            "events_per_s": _rate(rows, run.seconds), "net_events_per_s": _rate(rows, net),
            "inner_events_per_s": _rate(rows, inner or 0.0), "rss_bytes": run.rss_bytes,
            "summary": run.summary}


def _check(problems: list[str], **facts) -> dict:
    return {"ok": not problems, "problems": problems[:10], "problem_count": len(problems),
            **facts}


def reingest_check(summary: dict, rows: int, written: dict) -> dict:
    """A re-ingest counts every row a duplicate and writes nothing."""
    problems = []
    if summary.get("duplicates") != rows:
        problems.append(f"{summary.get('duplicates')} duplicates counted of {rows} rows")
    for key in ("accepted", "rejected", "late"):
        if summary.get(key):
            problems.append(f"{summary[key]} rows {key}")
    for name, t in written["tables"].items():
        if t["inserted"] or t["updated"] or t["deleted"]:
            problems.append(f"{name}: {t['inserted']} inserted, {t['updated']} updated, "
                            f"{t['deleted']} deleted")
    for name, delta in written["others_changed"].items():
        problems.append(f"{name}: {delta:+} rows")
    return _check(problems, rows=rows, duplicates=summary.get("duplicates"),
                  rows_written=written["total"])


def boundary_check(written: dict) -> dict:
    """The plain month crosses no boundary: no bucket made or removed, no boundary entry."""
    problems = []
    b = written["tables"]["buckets"]
    if b["inserted"] or b["deleted"]:
        problems.append(f"buckets: {b['inserted']} inserted, {b['deleted']} deleted")
    boundary = {k: v for k, v in written["ledger_by_kind"].items() if k in BOUNDARY_KINDS}
    if boundary:
        problems.append(f"boundary ledger entries {boundary}")
    return _check(problems, boundary_entries=sum(boundary.values()),
                  buckets_inserted=b["inserted"])


def ingest_and_check(name: str, url: str, files: Files, w: Workload, sample: list[int],
                     folder: Path, full: bool = True) -> dict:
    """The month through the CLI: the fixed cost, (a), the re-ingest and the rollover,
    with the rows the last two write counted; the balance check after (a) and after
    the rollover. Without `full`, only the fixed cost, (a) and its check."""
    out: dict = {}
    fixed = run_cli(url, ["ingest", str(files.empty)], folder, f"{name}-empty")
    out["cli_fixed_seconds"] = fixed.seconds
    run = run_cli(url, ["ingest", str(files.usage), "--rejects", str(folder / f"{name}.rej")],
                  folder, f"{name}-ingest")
    out["ingest"] = _cli_timing(run, fixed.seconds, w.n_events)
    usage_bytes = int(w.amount.sum())
    out["consistency"] = check_consistency(url, w, sample, w.n_events, usage_bytes)
    if not full:
        return out
    before = writes_before(url)
    again = run_cli(url, ["ingest", str(files.usage)], folder, f"{name}-reingest")
    out["reingest"] = _cli_timing(again, fixed.seconds, w.n_events)
    out["reingest_check"] = reingest_check(again.summary, w.n_events,
                                           writes_after(url, before, keep_rows=False))
    before = writes_before(url)
    roll = run_cli(url, ["ingest", str(files.rollover)], folder, f"{name}-rollover")
    written = writes_after(url, before, keep_rows=True)
    out["rollover"] = {**_cli_timing(roll, fixed.seconds, w.n_lines), "lines": w.n_lines,
                       "lines_per_s": _rate(w.n_lines, max(roll.seconds - fixed.seconds, 1e-3)),
                       "writes": {k: v for k, v in written.items() if k != "rows"}}
    out["consistency_after_rollover"] = check_consistency(
        url, w, sample, w.n_events + w.n_lines, usage_bytes + w.n_lines * 10 * KB)
    forget_engines()
    out["rollover_floor"] = floor_writes(url, written, folder)
    return out


def plain_month(name: str, url: str, pf: PlainFiles, pw: Workload, folder: Path,
                floor) -> dict:
    """The plain month on a database of its own: line import, the untimed warm-up (an
    event per line at the cycle's start), the fixed cost, (a) with the rows it writes counted (no
    boundary rows allowed), the balance check, the re-ingest (all duplicates, nothing
    written) and the check again, then (b') by `floor(source_url)`."""
    out: dict = {"workload": pw.stats, "file_bytes": pf.usage.stat().st_size}
    out["provision"] = provision(url, [(1, "UTC", pf.lines)])
    forget_engines()
    warm = run_cli(url, ["ingest", str(pf.warmup)], folder, f"{name}-plain-warmup")
    if warm.summary.get("accepted") != pw.n_lines:
        raise BenchError(f"the plain month's warm-up accepted {warm.summary.get('accepted')} "
                         f"of {pw.n_lines} events")
    out["warmup"] = {"rows": pw.n_lines, "seconds": warm.seconds, "summary": warm.summary}
    fixed = run_cli(url, ["ingest", str(pf.empty)], folder, f"{name}-plain-empty")
    out["cli_fixed_seconds"] = fixed.seconds
    sample = check_sample(pw, 20)
    events = pw.n_lines + pw.n_events
    usage_bytes = pw.n_lines * WARMUP_BYTES + int(pw.amount.sum())
    before = writes_before(url)
    run = run_cli(url, ["ingest", str(pf.usage), "--rejects", str(folder / f"{name}-plain.rej")],
                  folder, f"{name}-plain-ingest")
    out["ingest"] = _cli_timing(run, fixed.seconds, pw.n_events)
    out["writes"] = writes_after(url, before, keep_rows=False)
    out["boundary_check"] = boundary_check(out["writes"])
    out["consistency"] = check_consistency(url, pw, sample, events, usage_bytes)
    before = writes_before(url)
    again = run_cli(url, ["ingest", str(pf.usage)], folder, f"{name}-plain-reingest")
    out["reingest"] = _cli_timing(again, fixed.seconds, pw.n_events)
    out["reingest_check"] = reingest_check(again.summary, pw.n_events,
                                           writes_after(url, before, keep_rows=False))
    out["consistency_after_reingest"] = check_consistency(url, pw, sample, events, usage_bytes)
    forget_engines()
    out["floor_keys"] = floor(url)
    return out


def run_sqlite(files: Files, w: Workload, sample: list[int], folder: Path, args,
               plain: tuple[PlainFiles, Workload] | None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "carryover.db"
    url = f"sqlite:///{db}"
    out: dict = {"url": url}
    out["provision"] = provision(url, files.line_groups)
    if args.ingest_only:
        out.update(ingest_and_check("sqlite", url, files, w, sample, folder, full=False))
        return out
    provisioned = folder / "provisioned.db"
    sqlite_snapshot(db, provisioned)
    out.update(ingest_and_check("sqlite", url, files, w, sample, folder))
    out["floor"] = floor_sqlite(folder / "floor.db", files.usage, provisioned, keys=False)
    out["floor_keys"] = floor_sqlite(folder / "floor_keys.db", files.usage, provisioned,
                                     keys=True)
    out["read_only"] = read_only(files.usage)
    naive_db = folder / "naive.db"
    shutil.copyfile(provisioned, naive_db)
    out["naive"] = naive(f"sqlite:///{naive_db}", w, min(args.naive_sample, w.n_events))
    if args.profile:
        out["profile"] = profile_sqlite(provisioned, files, folder, args.profile_top)
    if plain is not None:
        pf, pw = plain
        plain_db = folder / "plain.db"

        def floor(source_url: str) -> dict:
            return floor_sqlite(folder / "plain_floor_keys.db", pf.usage, plain_db, keys=True)

        out["plain"] = plain_month("sqlite", f"sqlite:///{plain_db}", pf, pw, folder, floor)
    return out


@contextlib.contextmanager
def pg_database(base: str) -> Iterator[str]:
    """A throwaway database on the server at `base`, dropped at the end."""
    from sqlalchemy import create_engine, text

    from carryover.store.engine import normalize_url

    parsed = normalize_url(base)
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"carryover_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise PgUnavailable(f"no PostgreSQL at {parsed.render_as_string(hide_password=True)}: "
                            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        forget_engines()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


class PgUnavailable(RuntimeError):
    pass


def run_postgres(files: Files, w: Workload, sample: list[int], folder: Path, base: str,
                 plain: tuple[PlainFiles, Workload] | None) -> dict:
    from sqlalchemy import create_engine, text

    folder.mkdir(parents=True, exist_ok=True)
    with pg_database(base) as url:
        out: dict = {}
        engine = create_engine(url)
        with engine.connect() as conn:
            out["server_version"] = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
        out["provision"] = provision(url, files.line_groups)
        forget_engines()
        out.update(ingest_and_check("postgresql", url, files, w, sample, folder))
        out["floor"] = floor_postgres(url, files.usage, keys=False)
        out["floor_keys"] = floor_postgres(url, files.usage, keys=True)
    if plain is not None:
        pf, pw = plain
        with pg_database(base) as url:
            out["plain"] = plain_month("postgresql", url, pf, pw, folder,
                                       lambda u: floor_postgres(u, pf.usage, keys=True))
    return out


# --------------------------------------------------------------------------- profile


def _short_sql(sql: str) -> str:
    words = " ".join(sql.split())
    return words if len(words) <= 90 else words[:87] + "..."


def _functions(prof: cProfile.Profile, top: int) -> tuple[list[dict], list[dict]]:
    """The `top` functions by own time, and carryover's own by cumulative time."""
    functions = []
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in stats.items():
        parts = Path(file).parts
        mine = "carryover" in parts[:-1] and "bench" not in parts
        where = f"{'/'.join(parts[-2:])}:{line}({fn})" if line else fn
        functions.append({"function": where, "calls": nc, "tottime": tt, "cumtime": ct,
                          "carryover": mine})
    by_tot = sorted(functions, key=lambda f: -f["tottime"])[:top]
    ours = [f for f in functions if f["carryover"]]
    return by_tot, sorted(ours, key=lambda f: -f["cumtime"])[:top]


def profile_sqlite(provisioned: Path, files: Files, folder: Path, top: int) -> dict:
    """Where the time of (a) and of the rollover goes on SQLite, in-process.

    The CLI's work (read_usage -> ingest_chunks) runs twice more on fresh copies of
    the provisioned database, each time the month then the rollover file: once
    with every SQL statement timed (raw_cursor.Raw.run/many, SQLAlchemy cursor
    executes and UnitOfWork.commit wrapped with a clock, little overhead), once
    under cProfile. The reader's thread (CSV parsing) is invisible to cProfile:
    its time shows as the main thread waiting in queue.get, if at all.
    """
    from sqlalchemy import event

    from carryover.adapters.cdr_files import read_usage
    from carryover.services.ingest.chunks import ingest_chunks
    from carryover.store import raw_cursor
    from carryover.store.uow import UnitOfWork

    now_us = int(NOW.timestamp()) * US
    phases = (("ingest", files.usage), ("rollover", files.rollover))

    def fresh(tag: str):
        db = folder / f"profile-{tag}.db"
        shutil.copyfile(provisioned, db)
        return open_engine(f"sqlite:///{db}")

    def timed_ingest(engine, path: Path, ref: str) -> float:
        def chunks():
            for chunk, bad in read_usage(path, chunk_rows=CHUNK_ROWS, now_us=now_us):
                yield str(path), chunk, bad
        t0 = time.perf_counter()
        ingest_chunks(UnitOfWork(engine), chunks(), ref, None, None)
        return time.perf_counter() - t0

    out: dict = {}
    # -- 1. statements
    spent: dict[str, list] = {}

    def note(key: str, seconds: float, rows: int = 0) -> None:
        s = spent.setdefault(key, [0.0, 0, 0])
        s[0] += seconds
        s[1] += 1
        s[2] += rows

    def timed(method, kind):
        def wrapper(self, sql, *a, **k):
            t0 = time.perf_counter()
            try:
                return method(self, sql, *a, **k)
            finally:
                note(f"{kind} {_short_sql(sql)}", time.perf_counter() - t0,
                     len(a[0]) if kind == "many" and a else 0)
        return wrapper

    def timed_commit(method):
        def wrapper(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return method(self, *a, **k)
            finally:
                note("COMMIT (UnitOfWork.commit)", time.perf_counter() - t0)
        return wrapper

    starts: dict[int, float] = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        starts[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        t0 = starts.pop(id(cursor), time.perf_counter())
        note(f"sqla {_short_sql(statement)}", time.perf_counter() - t0)

    engine = fresh("statements")
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    saved = (raw_cursor.Raw.run, raw_cursor.Raw.many, UnitOfWork.commit)
    raw_cursor.Raw.run = timed(saved[0], "run")
    raw_cursor.Raw.many = timed(saved[1], "many")
    UnitOfWork.commit = timed_commit(saved[2])
    try:
        for phase, path in phases:
            spent.clear()
            wall = timed_ingest(engine, path, f"bench-profile-sql-{phase}")
            statements = sorted(({"statement": k, "seconds": v[0], "calls": v[1], "rows": v[2],
                                  "share": v[0] / wall} for k, v in spent.items()),
                                key=lambda s: -s["seconds"])
            out[phase] = {"wall_seconds": wall, "statements": statements[:top],
                          "sql_seconds": sum(s["seconds"] for s in statements)}
    finally:
        raw_cursor.Raw.run, raw_cursor.Raw.many, UnitOfWork.commit = saved
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        forget_engines()

    # -- 2. cProfile
    engine = fresh("cprofile")
    for phase, path in phases:
        prof = cProfile.Profile()
        prof.enable()
        wall = timed_ingest(engine, path, f"bench-profile-{phase}")
        prof.disable()
        prof_path = folder / f"{phase}.prof"
        prof.dump_stats(prof_path)
        by_tot, by_cum = _functions(prof, top)
        out[phase].update({"cprofile_wall_seconds": wall, "top_tottime": by_tot,
                           "top_cumtime_carryover": by_cum, "prof_file": str(prof_path)})
    forget_engines()
    return out


# --------------------------------------------------------------------------- report


def reference_rate(args: argparse.Namespace) -> dict | None:
    """The rate the flat target is judged against: --reference-rate, or the SQLite (a)
    of a run saved with --save (net of its fixed cost, as this run's)."""
    if args.reference_rate:
        return {"events_per_s": float(args.reference_rate), "source": "--reference-rate"}
    if not args.compare:
        return None
    saved = json.loads(Path(args.compare).read_text())
    b = saved.get("sqlite") or {}
    a = b.get("ingest")
    if not a:
        raise SystemExit(f"--compare {args.compare}: no SQLite (a) in that result")
    net = a.get("net_seconds") or max(a["seconds"] - b["cli_fixed_seconds"], 1e-3)
    return {"events_per_s": _rate(saved["events"], net), "source": args.compare,
            "events": saved["events"], "lines": saved.get("lines"),
            "commit": (saved.get("code") or {}).get("commit")}


def targets(r: dict) -> list[dict]:
    """The targets of issue 20. `pass` is None when the run cannot judge the target."""
    out = []

    def add(name, kind, measured, goal, ok, note=""):
        out.append({"target": name, "kind": kind, "measured": measured, "goal": goal,
                    "pass": None if ok is None else bool(ok), "note": note})

    lines = r["lines"]
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend) or {}
        if "ingest" not in b:
            continue
        a, fixed = b["ingest"], b["cli_fixed_seconds"]
        if "floor_keys" in b:
            fk = b["floor_keys"]["seconds"]
            ratio = a["net_seconds"] / fk
            add(f"{backend}: month (a)/(b')", "ratio", ratio, TARGET_FLOOR_RATIO,
                ratio <= TARGET_FLOOR_RATIO,
                f"(a) {a['seconds']:.2f} s wall - {fixed:.2f} s fixed cost; (b') {fk:.2f} s; "
                f"wall/(b') {a['seconds'] / fk:.2f}x")
        p = b.get("plain") or {}
        if "ingest" in p and "floor_keys" in p:
            pa_, pfk = p["ingest"], p["floor_keys"]["seconds"]
            ratio = pa_["net_seconds"] / pfk
            add(f"{backend}: plain month (a)/(b')", "ratio", ratio, TARGET_PLAIN_RATIO,
                ratio <= TARGET_PLAIN_RATIO,
                f"(a) {pa_['seconds']:.2f} s wall - {p['cli_fixed_seconds']:.2f} s fixed; "
                f"(b') {pfk:.2f} s; {p['boundary_check']['boundary_entries']} boundary entries")
        for label, w in (("month", b), ("plain month", p)):
            if "reingest" in w:
                share = w["reingest"]["net_seconds"] / w["ingest"]["net_seconds"]
                add(f"{backend}: {label} re-ingest / first ingest", "share", share,
                    TARGET_DUPLICATE_SHARE, share <= TARGET_DUPLICATE_SHARE,
                    f"net {w['reingest']['net_seconds']:.2f} s / {w['ingest']['net_seconds']:.2f}"
                    f" s; {w['reingest']['summary'].get('duplicates', 0):,} duplicates")
        if "rollover" in b and "rollover_floor" in b:
            roll, rf = b["rollover"], b["rollover_floor"]
            ratio = roll["net_seconds"] / rf["seconds"]
            add(f"{backend}: rollover / its rows' bare write", "ratio", ratio,
                TARGET_ROLLOVER_FLOOR_RATIO, ratio <= TARGET_ROLLOVER_FLOOR_RATIO,
                f"net {roll['net_seconds']:.2f} s; {rf['rows']:,} rows in {rf['seconds']:.2f} s")
            if backend == "sqlite":
                goal = TARGET_ROLLOVER_S * lines / TARGET_ROLLOVER_LINES
                add(f"sqlite: rollover of {lines:,} lines", "seconds", roll["net_seconds"], goal,
                    roll["net_seconds"] <= goal,
                    f"{TARGET_ROLLOVER_S} s per {TARGET_ROLLOVER_LINES:,} lines, scaled linearly;"
                    f" net of the fixed cost; in-process {roll['inner_seconds'] or 0:.2f} s")
        if backend == "sqlite":
            ref = r.get("reference")
            rate = a["net_events_per_s"]
            if ref:
                goal = TARGET_FLAT_SHARE * ref["events_per_s"]
                add(f"sqlite: flat rate, {r['events']:,} events", "rate", rate, goal, rate >= goal,
                    f"{rate / ref['events_per_s']:.0%} of {ref['events_per_s']:,.0f} events/s "
                    f"({ref['source']}"
                    + (f", {ref['events']:,} events" if ref.get("events") else "")
                    + "); net of the fixed cost")
            else:
                add(f"sqlite: flat rate, {r['events']:,} events", "rate", rate, None, None,
                    "not judged (no reference): a 10,000,000-event run takes the "
                    "1,000,000-event rate by --reference-rate or --compare")
        add(f"{backend}: peak RSS of (a)", "bytes", a["rss_bytes"], TARGET_RSS,
            a["rss_bytes"] <= TARGET_RSS, f"{r['events']:,} events")
    return out


def _fmt_target(t: dict) -> tuple[str, str]:
    kind, m, g = t["kind"], t["measured"], t["goal"]
    if kind == "bytes":
        return f"{m / MB:,.0f} MB", f"<= {g / MB:,.0f} MB"
    if kind == "ratio":
        return f"{m:.2f}x", f"<= {g}x"
    if kind == "share":
        return f"{m:.0%}", f"<= {g:.0%}"
    if kind == "seconds":
        return f"{m:.2f} s", f"<= {g:.2f} s"
    return f"{m:,.0f}", "-" if g is None else f">= {g:,.0f}"


def _checks(r: dict) -> list[tuple[str, str, dict]]:
    """Every check of the run: (backend, what, the check)."""
    out = []
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend) or {}
        for where, d in (("month", b), ("plain month", b.get("plain") or {})):
            for key, what in CHECKS:
                if key in d:
                    out.append((backend, f"{where}: {what}", d[key]))
    return out


CHECKS = (("consistency", "balances after (a)"),
          ("reingest_check", "re-ingest: every row a duplicate, nothing written"),
          ("consistency_after_rollover", "balances after the rollover"),
          ("boundary_check", "no boundary rows written"),
          ("consistency_after_reingest", "balances after the re-ingest"))


def print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    st = r["workload"]
    plain_stats = ((r.get("sqlite") or {}).get("plain") or {}).get("workload")
    title = (f"Bulk ingestion: the month, {r['events']:,} events over {r['lines']:,} lines, "
             f"{st['accounts']:,} accounts (seed {r['seed']})")
    if plain_stats or r.get("plain_events"):
        title += f"; the plain month, {r['plain_events']:,} events over {r['lines']:,} lines"
    table = Table(title=title, caption="net: CLI wall seconds minus the CLI's fixed cost (an "
                  "ingest of an empty file); rows/s and (a)/this on net seconds")
    for name in ("backend", "path", "rows", "seconds", "net s", "rows/s", "(a)/this",
                 "peak RSS"):
        table.add_column(name, justify="left" if name in ("backend", "path") else "right")
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend)
        if not b or "ingest" not in b:
            continue
        label = "executemany" if backend == "sqlite" else "COPY"

        def row(path, rows, seconds, net=None, rss=None, ref=None, unit="", backend=backend):
            use = seconds if net is None else net
            table.add_row(backend, path, "" if rows is None else f"{rows:,}{unit}",
                          f"{seconds:.2f}", "" if net is None else f"{net:.2f}",
                          "" if rows is None else f"{_rate(rows, use):,.0f}{unit and '/s'}",
                          "" if ref is None else f"{ref / use:.2f}x",
                          "" if rss is None else f"{rss / MB:,.0f} MB")

        def cli(path, t, ref=None, unit=""):
            row(path, t["rows"], t["seconds"], t["net_seconds"], t["rss_bytes"], ref, unit)
            if t.get("inner_seconds"):
                row("    its own 'seconds' (no start-up)", t["rows"], t["inner_seconds"], unit=unit)

        a = b["ingest"]
        ref = a["net_seconds"]
        row("CLI fixed cost (ingest of an empty file)", None, b["cli_fixed_seconds"])
        cli("(a) carryover ingest usage.csv (CLI)", a, ref)
        if "floor" in b:
            f = b["floor"]
            row(f"(b) floor: {label}, bare table", f["rows"], f["seconds"], ref=ref)
            row("    of which read + prepare", f["rows"], f["prepare_seconds"])
            row(f"    of which {label} + commit", f["rows"], f["insert_seconds"])
            fk = b["floor_keys"]
            row(f"(b') {label}, usage_events' keys", fk["rows"], fk["seconds"], ref=ref)
        if "naive" in b:
            c = b["naive"]
            star = "*" if c["extrapolated"] else ""
            table.add_row(backend, f"(c) record_usage per row{star}", f"{r['events']:,}",
                          f"{c['seconds_for_all']:.1f}{star}", "", f"{c['events_per_s']:,.0f}",
                          f"{ref / c['seconds_for_all']:.4f}x", "")
        if "read_only" in b:
            ro = b["read_only"]
            row("(r) read_usage only, no database", ro["rows"], ro["seconds"], ref=ref)
        if "reingest" in b:
            cli("re-ingest usage.csv: all duplicates (CLI)", b["reingest"], ref)
        if "rollover" in b:
            cli("rollover: 1 event per line after its boundary (CLI)", b["rollover"],
                unit=" lines")
            rf = b["rollover_floor"]
            row(f"rollover floor: the rows it wrote, {label} into bare tables", rf["rows"],
                rf["seconds"], ref=b["rollover"]["net_seconds"])
        p = b["provision"]
        row("line import (service, per calendar file)", p["lines"], p["seconds"], unit=" lines")
        pl = b.get("plain")
        if pl:
            pref = pl["ingest"]["net_seconds"]
            row("plain: line import (one calendar)", pl["provision"]["lines"],
                pl["provision"]["seconds"], unit=" lines")
            row("plain: warm-up, 1 event per line at the cycle's start (CLI, set-up)",
                pl["warmup"]["rows"], pl["warmup"]["seconds"])
            row("plain: CLI fixed cost", None, pl["cli_fixed_seconds"])
            cli("plain: (a) carryover ingest (CLI)", pl["ingest"], pref)
            row(f"plain: (b') {label}, usage_events' keys", pl["floor_keys"]["rows"],
                pl["floor_keys"]["seconds"], ref=pref)
            cli("plain: re-ingest, all duplicates (CLI)", pl["reingest"], pref)
    console.print(table)
    if "naive" in (r.get("sqlite") or {}) and r["sqlite"]["naive"]["extrapolated"]:
        c = r["sqlite"]["naive"]
        console.print(f"* (c) timed on the first {c['sampled']:,} rows of the file "
                      f"({c['seconds']:.1f} s), extrapolated linearly to {r['events']:,}; "
                      f"(a)/this on (a)'s net seconds.")

    wt = Table(title="Rows written, counted in the database before and after each run "
                     "(ins/upd: inserted/updated)")
    for name in ("backend", "run", "usage_events", "ledger_entries", "buckets ins/upd",
                 "counters ins/upd", "outbox", "accounts upd", "total", "ledger entries by kind"):
        wt.add_column(name, justify="left" if name in ("backend", "run", "ledger entries by kind")
                      else "right")
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend) or {}
        runs = []
        if "rollover" in b:
            runs.append(("month: rollover", b["rollover"]["writes"]))
        if "reingest_check" in b:
            runs.append(("month: re-ingest", None))
        pl = b.get("plain") or {}
        if "writes" in pl:
            runs.append(("plain month: (a)", pl["writes"]))
        if "reingest_check" in pl:
            runs.append(("plain month: re-ingest", None))
        for name, w in runs:
            if w is None:  # a re-ingest: its check holds the total
                check = (b if name.startswith("month") else pl)["reingest_check"]
                wt.add_row(backend, name, "", "", "", "", "", "", f"{check['rows_written']:,}", "")
                continue
            t = w["tables"]
            kinds = ", ".join(f"{k} {v:,}" for k, v in w["ledger_by_kind"].items()) or "-"
            if w["others_changed"]:
                kinds += "; other tables " + ", ".join(
                    f"{k} {v:+,}" for k, v in w["others_changed"].items())
            wt.add_row(backend, name, f"{t['usage_events']['inserted']:,}",
                       f"{t['ledger_entries']['inserted']:,}",
                       f"{t['buckets']['inserted']:,}/{t['buckets']['updated']:,}",
                       f"{t['counters']['inserted']:,}/{t['counters']['updated']:,}",
                       f"{t['outbox']['inserted']:,}", f"{t['accounts']['updated']:,}",
                       f"{w['total']:,}", kinds)
    if wt.rows:
        console.print(wt)

    for backend in ("sqlite", "postgresql"):
        b = r.get(backend) or {}
        if "skipped" in b:
            console.print(f"[yellow]{backend} skipped[/yellow]: {b['skipped']}", markup=True)
        if "error" in b:
            console.print(f"[bold red]{backend} failed[/bold red]: {b['error']}", markup=True)
        if "ingest" in b:
            s = b["ingest"]["summary"]
            text = (
                f"{backend}: accepted {s.get('accepted', 0):,}, late {s.get('late', 0):,}, "
                f"duplicates {s.get('duplicates', 0):,}, rejected {s.get('rejected', 0):,}, "
                f"columnar accounts {s.get('bulk_accounts', 0):,}, object-book accounts "
                f"{s.get('book_accounts', 0):,}")
            if "rollover" in b:
                roll = b["rollover"]["summary"]
                text += (f"; rollover {roll.get('bulk_accounts', 0):,} columnar / "
                         f"{roll.get('book_accounts', 0):,} object-book accounts")
            pl = b.get("plain") or {}
            if "ingest" in pl:
                ps = pl["ingest"]["summary"]
                text += (f"; plain month accepted {ps.get('accepted', 0):,}, "
                         f"{ps.get('bulk_accounts', 0):,} columnar / "
                         f"{ps.get('book_accounts', 0):,} object-book accounts")
            console.print(text)

    tt = Table(title="Targets (issue 20)",
               caption="CLI times judged net of the CLI's fixed cost, measured in the same run "
                       "on the same database (wall clock minus an ingest of an empty file)")
    for name in ("target", "measured", "goal", "result", "note"):
        tt.add_column(name, justify="left" if name in ("target", "note") else "right")
    for t in r["targets"]:
        measured, goal = _fmt_target(t)
        verdict = ("n/a" if t["pass"] is None else
                   "[green]PASS[/green]" if t["pass"] else "[bold red]FAIL[/bold red]")
        tt.add_row(t["target"], measured, goal, verdict, t["note"])
    console.print(tt)
    if r["events"] < 10_000_000:
        console.print("Peak RSS for a 10,000,000-event file and the flat target are a run of "
                      "their own: --events 10000000 --ingest-only --compare SAVED, SAVED the "
                      "--save of a 1,000,000-event run.")
    m = r["machine"]
    text = (f"code {r['code']['commit']} (+ ingest digest {r['code']['ingest_sha256']}); "
            f"python {m['python']}, numpy {m['numpy']}, pyarrow {m['pyarrow']}, "
            f"SQLite {m['sqlite']}, PostgreSQL {m.get('postgresql') or '-'}, "
            f"nproc {m['nproc']}, load average {m['loadavg_before'][0]} before and "
            f"{m['loadavg_after'][0]} after; workloads generated in "
            f"{r['generate_seconds']:.1f} s (not timed); the month: "
            f"{st['after_cycle_end_within_grace']:,} events arrive after their cycle's end "
            f"(within grace)")
    if plain_stats:
        text += (f"; the plain month: {plain_stats['lines_with_events']:,} lines with events, "
                 f"at most {plain_stats['max_events_per_line']:,} events and "
                 f"{plain_stats['max_bytes_per_line'] / MB:,.0f} MB on one line, "
                 f"{plain_stats['first_at']} to {plain_stats['last_received_at']}")
    console.print(text)
    for backend, what, c in _checks(r):
        if c["ok"]:
            detail = ""
            if "lines_checked" in c:
                detail = (f": {c['lines_checked']} lines, {c['buckets_checked']} buckets "
                          f"({c['unlimited_buckets_skipped']} unlimited skipped), event count "
                          f"and bytes")
            elif "duplicates" in c:
                detail = f": {c['duplicates']:,} duplicates of {c['rows']:,} rows"
            console.print(f"[green]OK[/green] {backend}, {what}{detail}")
        else:
            console.print(f"[bold red]FAILED[/bold red] {backend}, {what}: "
                          f"{c['problem_count']} problems, e.g.")
            for p in c["problems"]:
                console.print(f"  {p}", markup=False)
    for phase, prof in ((r.get("sqlite") or {}).get("profile") or {}).items():
        print_profile(console, phase, prof)
    if not r["consistent"]:
        console.print("[bold red]exit 1: a check failed or a run did not complete[/bold red]")


def print_profile(console, phase: str, prof: dict) -> None:
    from rich.table import Table

    what = "(a) the month" if phase == "ingest" else "the rollover"
    pt = Table(title=f"SQL statements of {what}, in-process on SQLite: "
                     f"{prof['sql_seconds']:.2f} s of {prof['wall_seconds']:.2f} s wall")
    for name in ("statement", "calls", "rows", "seconds", "share"):
        pt.add_column(name, justify="left" if name == "statement" else "right")
    for s in prof["statements"]:
        pt.add_row(s["statement"], f"{s['calls']:,}", f"{s['rows']:,}", f"{s['seconds']:.2f}",
                   f"{100 * s['share']:.1f} %")
    console.print(pt)
    for key, title in (("top_tottime", "top by own time"),
                       ("top_cumtime_carryover", "carryover functions by cumulative time")):
        ft = Table(title=f"cProfile of {what}, {title} ({prof['cprofile_wall_seconds']:.2f} s "
                         f"under the profiler; {prof['prof_file']})")
        for name in ("function", "calls", "tottime", "cumtime"):
            ft.add_column(name, justify="left" if name == "function" else "right")
        for f in prof[key]:
            ft.add_row(f["function"], f"{f['calls']:,}", f"{f['tottime']:.2f}",
                       f"{f['cumtime']:.2f}")
        console.print(ft)


def code_version() -> dict:
    """Which code was measured: the commit, and a digest of the files being optimized."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    digest = hashlib.sha256()
    for rel in ("src/carryover/services/ingest/chunks.py", "src/carryover/store/raw_cursor.py",
                "src/carryover/domain/columnar/fold.py",
                "src/carryover/services/ingest/state_cache.py",
                "src/carryover/services/notify/chunk_notices.py",
                "src/carryover/store/notice_reads.py",
                "src/carryover/store/ingest_repository.py"):
        with contextlib.suppress(OSError):
            digest.update((root / rel).read_bytes())
    return {"commit": commit or None, "ingest_sha256": digest.hexdigest()[:12]}


def machine(pg_version: str | None) -> dict:
    import psycopg

    cpu = ""
    with contextlib.suppress(OSError):
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                cpu = text_line.split(":", 1)[1].strip()
                break
    return {"python": platform.python_version(), "numpy": np.__version__,
            "pyarrow": pa.__version__, "sqlite": sqlite3.sqlite_version,
            "psycopg": psycopg.__version__, "postgresql": pg_version, "nproc": _nproc(),
            "cpu": cpu, "platform": platform.platform()}


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict:
    code = code_version()  # before the runs: the code may change under a long run
    reference = reference_rate(args)  # a bad --compare file fails before the work
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    w = make_workload(args.events, args.lines, args.seed)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir).resolve()
            if work.exists() and any(work.iterdir()):
                shutil.rmtree(work)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-")))
        files = write_files(w, work / "files")
        plain = None
        if not args.ingest_only:
            pw = make_plain_workload(args.plain_events, args.lines, args.seed)
            plain = (write_plain_files(pw, work / "files"), pw)
        gen_s = time.perf_counter() - t0
        sample = check_sample(w, args.seed)
        result: dict = {"events": w.n_events, "lines": w.n_lines, "seed": args.seed,
                        "plain_events": args.plain_events if plain else None,
                        "workdir": str(work) if args.workdir else None,
                        "file_bytes": files.usage.stat().st_size, "workload": w.stats,
                        "generate_seconds": gen_s, "reference": reference}
        errors: list[str] = []
        try:
            result["sqlite"] = run_sqlite(files, w, sample, work / "sqlite", args, plain)
        except BenchError as exc:
            errors.append(f"sqlite: {exc}")
            result["sqlite"] = {"error": str(exc)}
        if args.ingest_only:
            result["postgresql"] = {"skipped": "--ingest-only"}
        elif args.pg:
            try:
                result["postgresql"] = run_postgres(files, w, sample, work / "postgresql",
                                                    args.pg, plain)
            except PgUnavailable as exc:
                result["postgresql"] = {"skipped": str(exc)}
            except BenchError as exc:
                errors.append(f"postgresql: {exc}")
                result["postgresql"] = {"error": str(exc)}
        else:
            result["postgresql"] = {"skipped": "--pg not given"}
        forget_engines()
    checks = [c["ok"] for _, _, c in _checks(result)]
    result["errors"] = errors
    result["consistent"] = bool(checks) and all(checks) and not errors
    result["targets"] = targets(result)
    result["pass"] = all(t["pass"] for t in result["targets"] if t["pass"] is not None)
    result["machine"] = machine(result["postgresql"].get("server_version"))
    result["code"] = code
    # Other work on the machine skews every number: the 1/5/15-minute load averages.
    result["machine"]["loadavg_before"] = [round(x, 2) for x in load_before]
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]

    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="usage events (default 1e6)")
    p.add_argument("--lines", type=int, default=100_000, help="lines (default 1e5)")
    p.add_argument("--seed", type=int, default=20260101, help="random seed")
    p.add_argument("--workdir", default=None,
                   help="keep files and databases here (emptied first); default: a temp dir")
    p.add_argument("--pg", default=DEFAULT_PG, metavar="URL",
                   help="PostgreSQL server to create a throwaway database on "
                        f"(default {DEFAULT_PG}); '' or 'none' to skip")
    p.add_argument("--naive-sample", type=int, default=NAIVE_SAMPLE,
                   help="rows for the naive path (c), at most --events / 50 "
                        f"(default {NAIVE_SAMPLE:,})")
    p.add_argument("--profile", action="store_true",
                   help="also profile (a) in-process on SQLite: SQL statements and cProfile")
    p.add_argument("--profile-top", type=int, default=10, help="rows in the profile tables")
    p.add_argument("--ingest-only", action="store_true",
                   help="only (a) on SQLite and its balance check, no floors, naive path, "
                        "re-ingest, rollover, plain month or PostgreSQL: for the peak RSS "
                        "and the flat rate of a big file (--events 10000000)")
    p.add_argument("--plain-events", type=int, default=None,
                   help="events of the plain month (default: --events)")
    p.add_argument("--reference-rate", type=float, default=None, metavar="EV_PER_S",
                   help="the flat target's reference: the 1,000,000-event run's SQLite (a) "
                        "events/s, net of its fixed cost")
    p.add_argument("--compare", metavar="PATH", default=None,
                   help="take the flat target's reference from a result saved with --save")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--save", metavar="PATH", default=None,
                   help="also write the JSON object to PATH")
    args = p.parse_args(argv)
    if args.plain_events is None:
        args.plain_events = args.events
    if args.events < 10 or args.lines < 1 or args.plain_events < 10:
        p.error("--events and --plain-events must be at least 10 and --lines at least 1")
    if args.reference_rate is not None and args.compare:
        p.error("give --reference-rate or --compare, not both")
    if args.compare and not Path(args.compare).is_file():
        p.error(f"--compare {args.compare}: no such file")
    if args.pg.strip().lower() in ("", "none"):
        args.pg = None
    args.naive_sample = max(1, min(args.naive_sample, args.events // 50))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    finally:
        Launcher.stop()
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0 if result["consistent"] else 1


if __name__ == "__main__":
    sys.exit(main())
