"""Smoke test for bench/advice.py: the advice benchmark runs on a small workload and
replays every candidate plan over every cycle. Speed is not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "advice.py"


def test_smoke_run() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--events", "300", "--runs", "1",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["cycles"] == 6 and result["plans"] == 7
    assert result["verdict"] in ("PASS", "FAIL") and result["best_ms"] > 0
