"""Smoke test for bench/ingest.py: a small run completes and its balance check passes.

The benchmark generates lines and a month of usage, ingests it with the
`carryover` CLI into SQLite, loads the floor tables, runs the naive path on a
sample and a cycle rollover, and checks balances on a sample of lines (usage ==
debits + overage; each bucket's ledger fold == its remaining). PostgreSQL is
left out here (`--pg none`): the PostgreSQL tier has its own tests. Speed is
not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


def test_smoke_run_is_consistent(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--events", "20000", "--lines", "2000", "--pg", "none",
         "--workdir", str(tmp_path / "work"), "--json"],
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
    # Every line got one event past its boundary and was rolled over in one run.
    assert sqlite["rollover"]["summary"]["accepted"] == result["lines"] == 2000
    assert sqlite["floor"]["rows"] == sqlite["floor_keys"]["rows"] == 20000
    assert sqlite["naive"]["sampled"] == 400 and sqlite["naive"]["refused"] == 0
    assert result["postgresql"] == {"skipped": "--pg not given"}
    assert {t["target"] for t in result["targets"]} >= {
        "sqlite: (a) events/s", "sqlite: time (a)/(b)", "sqlite: (a) vs (c)",
        "sqlite: peak RSS of (a)", "sqlite: rollover of 1,000,000 lines"}


def test_peak_rss_is_the_childs_own(tmp_path: Path) -> None:
    """Linux carries a forking process's resident size into the child's `ru_maxrss`:
    the bench starts the CLI from a small launcher so a big bench process does not
    show up as the CLI's peak. A child that allocates 200 MB must still show it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_ingest_rss", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
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
