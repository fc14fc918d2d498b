"""The garbage collector's settings for the two kinds of long work a process does.

Python's cyclic collector runs a full pass over every live object whenever the
objects that survived grow by a quarter. The defaults suit short scripts; a
serving worker and a file ingest hold millions of long-lived objects, so both
tune it, here and nowhere else:

- `for_serving`: what exists once the app is built lives as long as the process,
  so it is frozen out of the collector's passes, and young collections run after
  20,000 allocations instead of 700. Under a packet core's load the full passes
  over kept books, the app and SQLAlchemy's caches paused all of a worker's
  threads for tens of milliseconds: they were most of the Nchf p99 at 300
  updates/s (docs/performance.md).
- `fewer_collections`: within an ingest run (the line directory, the cache, a
  chunk's rows) the default thresholds made full passes about 5 % of the run. A
  chunk's garbage is almost all acyclic and freed by reference counting, so the
  run collects the youngest objects less often and the oldest almost never, and
  the thresholds in force before come back afterwards.

Both change the whole process, so only a caller that owns the process asks
(runtime.Carryover for a server, the CLI's ingest for a file).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

SERVING_THRESHOLDS = (20_000, 50, 50)
INGEST_THRESHOLDS = (100_000, 50, 1000)


def for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*INGEST_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
