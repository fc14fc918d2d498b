"""Killing `carryover ingest` mid-file (SIGKILL) and running it again gives exactly the
balances of one clean run: every chunk is one transaction, and events already stored
are recognised by their id and not counted twice."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

LINES = 200
EVENTS = 12_000


def write_inputs(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    plans = ["tmobile-data-stash-10gb", "china-mobile-jiezhuan-20gb", "tmobile-go5g",
             "att-mobile-share-25gb", "travel-5gb-30d"]
    lines = folder / "lines.csv"
    with lines.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["msisdn", "imsi", "account", "plan", "start"])
        for i in range(LINES):
            out.writerow([f"+4917000{i:05d}", "", f"acct-{i}", plans[i % len(plans)],
                          "2026-01-01T00:00"])
    rows = []
    for i in range(EVENTS):
        minute = int(rng.integers(0, 50 * 24 * 60))  # crosses the 1 February boundary
        at = np.datetime64("2026-01-01T00:00") + np.timedelta64(minute, "m")
        # Most records arrive within minutes; some an hour or a day late (inside the grace
        # window), which puts them behind the boundary for the late ones.
        received = at + np.timedelta64(int(rng.choice([3, 3, 3, 3, 60, 60 * 30])), "m")
        rows.append((received, f"cdr-{i}", f"+4917000{int(rng.integers(0, LINES)):05d}",
                     f"{at}Z", int(rng.lognormal(15, 1.5)), f"{received}Z"))
    usage = folder / "usage.csv"
    with usage.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "received_at"])
        for row in sorted(rows):  # a CDR export is written in the order records arrived
            out.writerow(row[1:])
    return lines, usage


def carryover(db: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "CARRYOVER_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.Popen([sys.executable, "-m", "carryover.cli.__main__", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def run(db: Path, *args: str) -> str:
    proc = carryover(db, *args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def state(db: Path) -> dict:
    """Balances keyed by MSISDN (line ids are generated, so they differ between databases)."""
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        msisdn = dict(conn.execute(text("SELECT id, msisdn FROM lines")).all())

        def named(value: str) -> str:
            for line_id, number in msisdn.items():
                value = value.replace(line_id, number)
            return value
        out = {
            "buckets": sorted((named(b), r, c) for b, r, c in conn.execute(text(
                "SELECT id, remaining, closed FROM buckets"))),
            "counters": sorted((c, msisdn[ln], u, n, v) for c, ln, u, n, v in conn.execute(text(
                "SELECT cycle_start, line, unit, name, value FROM counters WHERE value != 0"))),
            "events": tuple(conn.execute(text(
                "SELECT count(*), sum(amount) FROM usage_events")).one()),
            "usage": sorted((msisdn[ln], total) for ln, total in conn.execute(text(
                "SELECT line, sum(amount) FROM ledger_entries WHERE kind IN ('debit', 'overage') "
                "GROUP BY line"))),
        }
    engine.dispose()
    return out


@pytest.mark.parametrize("reads", [[], ["--read-rows", "300"]], ids=["one-read", "four-reads"])
def test_sigkill_mid_file_then_rerun_equals_one_clean_run(tmp_path, reads):
    # With reads of at most 300 rows, each transaction of 1,000 rows takes four of 250:
    # a kill between two of its reads must lose the whole transaction, never a part of it.
    lines, usage = write_inputs(tmp_path)
    clean, crashed = tmp_path / "clean.db", tmp_path / "crashed.db"
    for db in (clean, crashed):
        run(db, "line", "import", str(lines), "--json")
    run(clean, "ingest", str(usage), "--chunk-rows", "1000", "--json")

    proc = carryover(crashed, "ingest", str(usage), "--chunk-rows", "1000", *reads, "--json")
    engine = create_engine(f"sqlite:///{crashed}")
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and stored < 4000:
        time.sleep(0.05)
        try:
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT count(*) FROM usage_events")).scalar()
        except Exception:  # the file may be locked mid-commit; try again
            continue
    engine.dispose()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = state(crashed)["events"][0]
    assert 0 < partial < EVENTS, "the kill must land mid-file for this test to mean anything"
    assert partial % 1000 == 0, "only whole transactions are stored"

    summary = json.loads(run(crashed, "ingest", str(usage), "--chunk-rows", "1000", "--json"))
    assert summary["duplicates"] == partial
    assert summary["accepted"] == EVENTS - partial
    assert state(crashed) == state(clean)
    again = json.loads(run(crashed, "ingest", str(usage), "--json"))
    assert (again["accepted"], again["duplicates"]) == (0, EVENTS)
