"""A separate OS process that spends API-key budget through the database limiter.

    python -m tests.integration.rate_limit_worker DB_URL KEY ATTEMPTS GO_FILE

Waits until GO_FILE exists (so two workers start together), makes ATTEMPTS
requests for KEY at the wall clock with 10 requests of burst and a rate so low
that nothing refills during the test, and prints how many were allowed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from carryover.services.access.rate_limits import DatabaseRateLimiter
from carryover.store.engine import make_engine
from carryover.store.uow import UnitOfWork


def main() -> None:
    url, key, attempts, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    engine = make_engine(url)
    limiter = DatabaseRateLimiter(rate=0.0001, burst=10, uow=lambda: UnitOfWork(engine))
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    allowed = sum(limiter.wait_for(key) == 0 for _ in range(attempts))
    print(allowed)
    engine.dispose()


if __name__ == "__main__":
    main()
