"""Allocators set to give freed memory back, for a long file ingest.

An ingest allocates and frees the same large arrays chunk after chunk: Arrow's
buffers for each read of the file, numpy's columns for each transaction. Two
allocators kept what was freed, so the process's resident size crept up over a
run while the live data stayed flat:

- pyarrow's default pool (mimalloc) keeps freed pages for reuse; the system
  allocator returns them;
- glibc raises its mmap threshold each time a large block allocated by mmap is
  freed (up to 32 MiB), after which blocks that size come from the heap, which
  fragments and is seldom trimmed. A fixed threshold keeps every large array in a
  mapping of its own, unmapped when it is freed.

Measured on the 1,000,000-event plain month in transactions of 1,000,000 rows
(docs/performance.md): peak RSS 976 MiB with the defaults, 878 MiB with both,
the same speed. Both change the whole process, so only a caller that owns the
process asks (the CLI's `ingest`), as with gc_tuning.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pyarrow as pa

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's default, held fixed


def give_back_freed_memory() -> bool:
    """Arrow on the system allocator and glibc's mmap threshold fixed; True when glibc
    took the threshold (elsewhere only Arrow's pool changes)."""
    pa.set_memory_pool(pa.system_memory_pool())
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
