"""A separate OS process that records usage for one line (used by the concurrency test)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork


def main(db_url: str, line: str, prefix: str, count: int, start: str) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    t0 = datetime.fromisoformat(start).astimezone(UTC)
    for i in range(count):
        at = t0 + timedelta(seconds=7 * i + (0 if prefix == "a" else 3))
        ledger_ops.record_usage(UnitOfWork(engine), line, 1_000_003 + i, at, at, f"{prefix}-{i}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
