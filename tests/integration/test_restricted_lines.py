"""The throttled and blocked line gauges of `/metrics` (services.ops.business_metrics), exact.

A line counts when its latest throttled or blocked notification belongs to its
account's current cycle, that cycle has not ended, and it has nothing usable now
(own buckets, and the pool within a member's limit). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.ops import business_metrics
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def counts(engine, now: datetime) -> tuple[int, int]:
    found = business_metrics.figures(UnitOfWork(engine), now)
    return found.lines_throttled, found.lines_blocked


def test_throttle_top_up_and_block(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN,
                             "tmobile-data-stash-10gb", line_id="stash")
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", JAN, "travel-5gb-30d",
                             line_id="pack")
    day2 = JAN + timedelta(days=2)
    assert counts(engine, day2) == (0, 0)

    ledger_ops.record_usage(UnitOfWork(engine), "stash", 9 * GB, day2, day2, "e1")
    assert counts(engine, day2) == (0, 0)  # 1 GB left: not throttled
    ledger_ops.record_usage(UnitOfWork(engine), "stash", 2 * GB, day2, day2, "e2")  # crosses 10 GB
    assert counts(engine, day2) == (1, 0)

    day3 = day2 + timedelta(days=1)
    ledger_ops.top_up(UnitOfWork(engine), "stash", GB, day3, 30, "t1")  # a top-up un-throttles
    assert counts(engine, day3) == (0, 0)
    assert counts(engine, day2) == (1, 0)  # before the top-up was valid it still counted

    ledger_ops.record_usage(UnitOfWork(engine), "pack", 6 * GB, day3, day3, "e3")  # the pack blocks
    assert counts(engine, day3) == (0, 1)
    # A new cycle no event has opened yet: the stored cycle has ended, nothing counts.
    assert counts(engine, FEB + timedelta(hours=1)) == (0, 0)


def test_family_member_past_its_limit_is_throttled(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", JAN, "att-mobile-share-15gb")
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000011", JAN, line_id="m1")
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000012", JAN, line_id="m2")
    at = JAN + timedelta(days=2)
    ledger_ops.set_limit(UnitOfWork(engine), "m1", GB, at, "lim-1")
    ledger_ops.record_usage(UnitOfWork(engine), "m1", 2 * GB, at, at, "e1")  # past its limit
    ledger_ops.record_usage(UnitOfWork(engine), "m2", GB, at, at, "e2")  # the pool has plenty
    assert counts(engine, at) == (1, 0)
    later = at + timedelta(hours=1)
    # a raised limit frees it
    ledger_ops.set_limit(UnitOfWork(engine), "m1", 4 * GB, later, "lim-2")
    assert counts(engine, later) == (0, 0)
