"""Cycles materialize lazily (docs/semantics.md, "Cycles and rollover at the boundary
instant"): no job has to run for rollover to show.

Before anything reads or writes at or after the boundary, the database holds no
rollover bucket; the first read at the boundary instant both shows it and stores
it, in that read's own transaction; a write right after the boundary draws it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.tables import buckets
from carryover.store.uow import UnitOfWork

GB = 1024**3


def stored_kinds(engine) -> list[str]:
    with UnitOfWork(engine) as uow:
        return sorted(uow.conn.execute(select(buckets.c.kind)).scalars())


def test_rollover_is_there_at_the_boundary_instant(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    jan = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 1 January 00:00 in Berlin (UTC+1)
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "Europe/Berlin", jan)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", jan,
                             "verizon-carryover-8gb", line_id="v")
    at = datetime(2026, 1, 20, 12, tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "v", 3 * GB, at, at, "e1")
    assert stored_kinds(engine) == ["allowance"]

    # 1 February 00:00 in Berlin (UTC+1) is 31 January 23:00 UTC.
    boundary = datetime(2026, 1, 31, 23, tzinfo=UTC)
    view = ledger_ops.balance(UnitOfWork(engine), "v", boundary)
    # 8 GB - 3 GB = 5 GB carried over, plus the new 8 GB allowance.
    assert view["available"] == {"data": 13 * GB}
    assert stored_kinds(engine) == ["allowance", "allowance", "rollover"]

    # Usage one second into the new cycle is drawn from the allowance first (Verizon's
    # order: allowance, then carryover), and the carryover is untouched.
    later = datetime(2026, 1, 31, 23, 0, 1, tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "v", 9 * GB, later, later, "e2")
    after = ledger_ops.balance(UnitOfWork(engine), "v", later)
    rollover = next(b for b in after["buckets"] if b["kind"] == "rollover")
    # 9 GB: 8 GB from the new allowance, the remaining 1 GB from the 5 GB carryover.
    assert rollover["remaining"] == 4 * GB


def test_a_read_in_the_past_changes_nothing(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", jan)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", jan,
                             "tmobile-data-stash-10gb", line_id="t")
    ledger_ops.balance(UnitOfWork(engine), "t", datetime(2026, 3, 1, tzinfo=UTC))
    before = stored_kinds(engine)
    past = ledger_ops.balance(UnitOfWork(engine), "t", datetime(2026, 1, 15, tzinfo=UTC))
    assert past["available"] == {"data": 10 * GB}
    assert stored_kinds(engine) == before
