"""Smoke test for bench/ingest.py: a small run completes and its checks pass.

The benchmark generates lines and a month of usage, ingests it with the
`carryover` CLI into SQLite, re-ingests it (every row a duplicate), loads the
floor tables, runs the naive path on a sample and a cycle rollover (counting the
rows it writes and writing as many into bare tables: its floor), then the plain
month (one plan, one calendar, one cycle: no boundary rows) with its re-ingest
and floor, and checks balances on a sample of lines (usage == debits + overage;
each bucket's ledger fold == its remaining). PostgreSQL is left out here
(`--pg none`): the PostgreSQL tier has its own tests. Speed is not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_ingest_rss", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    return bench


def test_smoke_run_is_consistent(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--events", "20000", "--lines", "2000", "--pg", "none",
         "--plain-events", "10000", "--workdir", str(tmp_path / "work"), "--json",
         "--reference-rate", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["consistent"] is True, result.get("errors")
    sqlite = result["sqlite"]
    for key in ("consistency", "consistency_after_rollover"):
        check = sqlite[key]
        assert check["ok"] is True, check["problems"]
        assert check["lines_checked"] == 200
        assert check["buckets_checked"] > 0
    summary = sqlite["ingest"]["summary"]
    assert summary["accepted"] == result["events"] == 20000
    assert summary["rejected"] == 0
    net = max(sqlite["ingest"]["seconds"] - sqlite["cli_fixed_seconds"], 1e-3)
    assert sqlite["ingest"]["net_seconds"] == pytest.approx(net)

    # The re-ingest counted every row a duplicate and wrote nothing.
    again = sqlite["reingest"]["summary"]
    assert again["duplicates"] == 20000 and again["accepted"] == 0
    assert sqlite["reingest_check"]["ok"] is True, sqlite["reingest_check"]["problems"]
    assert sqlite["reingest_check"]["rows_written"] == 0

    # Every line got one event past its boundary and was rolled over in one run; the
    # floor wrote as many rows as the rollover did (inserted or updated), table by table.
    roll = sqlite["rollover"]
    assert roll["summary"]["accepted"] == result["lines"] == 2000
    tables = roll["writes"]["tables"]
    assert tables["usage_events"]["inserted"] == 2000
    assert tables["accounts"]["updated"] == result["workload"]["accounts"]
    assert tables["buckets"]["inserted"] > 0
    kinds = roll["writes"]["ledger_by_kind"]
    assert kinds.get("grant", 0) > 0 and kinds.get("rollover_in", 0) > 0
    assert sum(kinds.values()) == tables["ledger_entries"]["inserted"]
    floor = sqlite["rollover_floor"]
    assert floor["per_table"] == {name: t["inserted"] + t["updated"]
                                  for name, t in tables.items()}
    assert floor["rows"] == roll["writes"]["total"] == sum(floor["per_table"].values())
    # The plain month's boundary check would have caught the rollover's rows.
    refused = _bench().boundary_check(roll["writes"])
    assert refused["ok"] is False and refused["boundary_entries"] > 0

    assert sqlite["floor"]["rows"] == sqlite["floor_keys"]["rows"] == 20000
    assert sqlite["naive"]["sampled"] == 400 and sqlite["naive"]["refused"] == 0

    # The plain month: its events rated, no boundary crossed, re-ingest all duplicates.
    plain = sqlite["plain"]
    assert plain["warmup"]["summary"]["accepted"] == 2000
    assert plain["ingest"]["summary"]["accepted"] == result["plain_events"] == 10000
    assert plain["ingest"]["summary"]["late"] == 0
    for key in ("consistency", "consistency_after_reingest", "boundary_check",
                "reingest_check"):
        assert plain[key]["ok"] is True, (key, plain[key]["problems"])
    written = plain["writes"]
    assert written["tables"]["buckets"]["inserted"] == 0
    assert written["tables"]["buckets"]["deleted"] == 0
    assert set(written["ledger_by_kind"]) <= {"debit", "overage"}
    assert written["ledger_by_kind"]["debit"] > 0
    assert written["tables"]["usage_events"]["inserted"] == 10000
    assert plain["boundary_check"]["boundary_entries"] == 0
    assert plain["reingest"]["summary"]["duplicates"] == 10000
    assert plain["reingest_check"]["rows_written"] == 0
    assert plain["floor_keys"]["rows"] == 10000

    assert result["postgresql"] == {"skipped": "--pg not given"}
    by_name = {t["target"]: t for t in result["targets"]}
    assert set(by_name) == {
        "sqlite: month (a)/(b')", "sqlite: plain month (a)/(b')",
        "sqlite: month re-ingest / first ingest", "sqlite: plain month re-ingest / first ingest",
        "sqlite: rollover / its rows' bare write", "sqlite: rollover of 2,000 lines",
        "sqlite: flat rate, 20,000 events", "sqlite: peak RSS of (a)"}
    # The rollover's goal scales with the lines: 3.5 s per 100,000.
    assert abs(by_name["sqlite: rollover of 2,000 lines"]["goal"] - 0.07) < 1e-9
    # Judged against the reference given (1,000 events/s: 850 needed).
    flat = by_name["sqlite: flat rate, 20,000 events"]
    assert flat["goal"] == 850.0 and flat["pass"] is (flat["measured"] >= 850.0)
    assert all(t["pass"] is not None for t in result["targets"])


def test_peak_rss_is_the_childs_own(tmp_path: Path) -> None:
    """Linux carries a forking process's resident size into the child's `ru_maxrss`:
    the bench starts the CLI from a small launcher so a big bench process does not
    show up as the CLI's peak. A child that allocates 200 MB must still show it."""
    bench = _bench()
    bench.Launcher.start()
    try:
        ballast = bytearray(400 * 1024 * 1024)
        ballast[::4096] = b"\x01" * len(ballast[::4096])  # touched: resident
        out, err = tmp_path / "o", tmp_path / "e"
        small = bench.Launcher.run([sys.executable, "-c", "pass"], {}, tmp_path, out, err)
        big = bench.Launcher.run(
            [sys.executable, "-c",
             "b = bytearray(200 * 2**20); b[::4096] = b'1' * len(b[::4096])"],
            {}, tmp_path, out, err)
        del ballast
    finally:
        bench.Launcher.stop()
    assert small["code"] == 0 and big["code"] == 0
    assert small["maxrss_kib"] < 100 * 1024  # not the 400 MB of this process
    assert big["maxrss_kib"] >= 200 * 1024
