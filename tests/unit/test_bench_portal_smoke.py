"""Smoke test for bench/portal.py: the portal benchmark builds its line, signs in by a
link and reads the overview; its events are all accepted. Speed is not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "portal.py"


def test_smoke_run() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--events", "200", "--requests", "5",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["events"] == 200 and result["requests"] == 5
    assert result["verdict"] in ("PASS", "FAIL") and result["p95_ms"] > 0
