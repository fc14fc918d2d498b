"""A separate OS process that records usage for one line (used by the concurrency test)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork


def main(db_url: str, line: str, prefix: str, count: int, start: str,
         gate: str | None = None) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    t0 = datetime.fromisoformat(start).astimezone(UTC)
    if gate is not None:
        # Start together: each says it is ready, then waits for the others, so a slow
        # start (imports on a loaded machine) does not run the processes one after
        # the other.
        folder, others = gate.rsplit(":", 1)
        Path(folder, f"{prefix}.ready").touch()
        deadline = time.monotonic() + 120
        while len(list(Path(folder).glob("*.ready"))) < int(others) + 1:
            if time.monotonic() > deadline:
                raise SystemExit("the other workers never became ready")
            time.sleep(0.005)
    for i in range(count):
        at = t0 + timedelta(seconds=7 * i + (0 if prefix == "a" else 3))
        ledger_ops.record_usage(UnitOfWork(engine), line, 1_000_003 + i, at, at, f"{prefix}-{i}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5],
         sys.argv[6] if len(sys.argv) > 6 else None)
