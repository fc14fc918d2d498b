"""Smoke test for bench/rating.py: the rating benchmark runs and both of its paths agree.

The benchmark checks the vectorized core (group events by line, then
rating.drain) against a plain per-event loop; here it runs on a small workload
so that check is exercised on every test run. Speed is not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rating.py"


def _run(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_smoke_run_paths_agree() -> None:
    result = _run("--events", "20000", "--lines", "2000")
    assert result["agree"] is True
    assert result["checks"] == {
        "debit_per_bucket": True,
        "overage_per_line": True,
        "conservation": True,
    }
    assert result["events"] == 20000
    assert result["lines"] == 2000
    assert result["checked_events"] == 20000
    assert result["loop"]["extrapolated"] is False
    # The workload is built so that the interesting cases happen.
    assert result["lines_in_overage"] > 0
    assert result["unlimited_buckets"] > 0


def test_sampled_loop_is_checked_on_its_prefix() -> None:
    # A tiny budget makes the loop stop after its first chunk (65,536 events)
    # and extrapolate; the core is then checked on that same prefix.
    result = _run("--events", "100000", "--lines", "5000", "--loop-budget", "0.001")
    assert result["agree"] is True
    assert result["loop"]["extrapolated"] is True
    assert result["checked_events"] == result["loop"]["events_timed"] < 100000
