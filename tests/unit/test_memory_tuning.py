"""The allocators a long ingest sets (carryover.memory_tuning)."""

from __future__ import annotations

import subprocess
import sys


def test_arrow_and_glibc_are_set_to_give_memory_back() -> None:
    # In a process of its own: both settings are the whole process's.
    code = ("import pyarrow as pa, sys; from carryover import memory_tuning as m; "
            "took = m.give_back_freed_memory(); "
            "print(pa.default_memory_pool().backend_name, took)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "system"
    if sys.platform.startswith("linux"):
        assert out[1] == "True"  # glibc took the threshold
