"""Alert thresholds a subscriber picked drive the usage notices on every path that decides
notices (a single event, a value batch, an ingest chunk, an Nchf batch with a kept book),
on SQLite and PostgreSQL; a line that picked none keeps 50/80/100 %.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carryover.adapters.cdr_files import read_usage
from carryover.domain.quota import QuotaPolicy
from carryover.runtime import Carryover
from carryover.services.charging.book_cache import BookCache
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    UnitRequest,
    UsedUnits,
)
from carryover.services.errors import NotFound, ServiceError
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import alert_thresholds
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
AT = JAN + timedelta(days=3)


@pytest.fixture
def engine(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    # tmobile-data-stash-10gb: 10 GB a cycle; "p" picks thresholds, "d" keeps the defaults.
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN,
                             "tmobile-data-stash-10gb", line_id="p", imsi="262010000000001")
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", JAN,
                             "tmobile-data-stash-10gb", line_id="d")
    return engine


def kinds(engine, line: str) -> list[str]:
    with UnitOfWork(engine) as uow:
        return sorted(uow.conn.execute(select(outbox.c.kind).where(outbox.c.line == line)
                                       .order_by(outbox.c.id)).scalars())


def test_a_picked_threshold_fires_on_a_single_event_and_the_defaults_still_do(engine):
    assert alert_thresholds.thresholds(UnitOfWork(engine), "p") == {
        "line": "p", "thresholds": [50, 80, 100], "default": True}
    view = alert_thresholds.set_thresholds(UnitOfWork(engine), "+4915100000001", [90, 30, 30])
    assert view == {"line": "p", "thresholds": [30, 90], "default": False}
    assert alert_thresholds.thresholds(UnitOfWork(engine), "p") == view
    for line in ("p", "d"):
        ledger_ops.record_usage(UnitOfWork(engine), line, 6 * GB, AT, AT, f"{line}-1")
    assert kinds(engine, "p") == ["usage_30"]
    assert kinds(engine, "d") == ["usage_50"]
    for line in ("p", "d"):
        ledger_ops.record_usage(UnitOfWork(engine), line, 3 * GB, AT, AT, f"{line}-2")
    assert kinds(engine, "p") == ["usage_30", "usage_90"]
    assert kinds(engine, "d") == ["usage_50", "usage_80"]
    with UnitOfWork(engine) as uow:
        payload = uow.conn.execute(select(outbox.c.payload).where(
            outbox.c.kind == "usage_90")).scalar_one()
    assert (payload["threshold"], payload["used"], payload["allowance"]) == (90, 9 * GB, 10 * GB)


def test_a_threshold_picked_below_the_usage_fires_at_once(engine):
    ledger_ops.record_usage(UnitOfWork(engine), "p", 4 * GB, AT, AT, "p-1")
    assert kinds(engine, "p") == []
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [25, 60])
    assert kinds(engine, "p") == ["usage_25"]


def test_back_to_the_defaults(engine):
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [10])
    assert alert_thresholds.set_thresholds(UnitOfWork(engine), "p", None)["default"] is True
    ledger_ops.record_usage(UnitOfWork(engine), "p", 6 * GB, AT, AT, "p-1")
    assert kinds(engine, "p") == ["usage_50"]


def test_a_value_batch_uses_the_picked_thresholds(engine):
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [20, 70])
    rows = [UsageRow(f"{line}{k}", line, AT, 3 * GB, AT) for k in range(3) for line in ("p", "d")]
    assert record_batch(UnitOfWork(engine), rows).accepted == 6
    assert kinds(engine, "p") == ["usage_20", "usage_70"]
    assert kinds(engine, "d") == ["usage_50", "usage_80"]


def test_an_ingest_chunk_uses_the_picked_thresholds(engine, tmp_path):
    from carryover.services.ingest.chunks import ingest_chunks
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [15, 45])
    path = tmp_path / "cdr.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "rating_group", "received_at"])
        for k in range(5):
            when = (AT + timedelta(minutes=k)).isoformat()
            out.writerow([f"c{k}", "p", when, GB, "", when])
            out.writerow([f"k{k}", "d", when, GB, "", when])

    def chunks():
        for chunk, rejects in read_usage(path, chunk_rows=2, now_us=0):
            yield str(path), chunk, rejects

    assert ingest_chunks(UnitOfWork(engine), chunks(), "test").accepted == 10
    assert kinds(engine, "p") == ["usage_15", "usage_45"]
    assert kinds(engine, "d") == ["usage_50"]


def test_an_nchf_batch_with_a_kept_book_sees_thresholds_picked_since(engine):
    policy = ChargingPolicy(QuotaPolicy(GB, 20, timedelta(hours=1)), timedelta(seconds=60), {})
    cache = BookCache(100)

    def ask(at, seq, used=()):
        return ChargingRequest(at, seq, (UnitRequest(1, True, None, used),), "p")
    (opened,) = charge(UnitOfWork(engine), policy, [ChargingOp("create", ask(AT, 0))], cache)
    assert not isinstance(opened, Exception), opened
    # Picked after the batch kept the account's book: the kept book must not decide.
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [5])
    used = (UsedUnits(0, GB, None),)
    (spent,) = charge(UnitOfWork(engine), policy,
                      [ChargingOp("update", ask(AT + timedelta(minutes=1), 1, used),
                                  opened.ref)], cache)
    assert not isinstance(spent, Exception), spent
    assert kinds(engine, "p") == ["usage_5"]


@pytest.mark.parametrize("values, message", [
    ([], "at least one"), ([0], "from 1 to 100"), ([101], "from 1 to 100"),
    ([50.5], "from 1 to 100"), (["80"], "from 1 to 100"), ([True], "from 1 to 100"),
    ([1, 2, 3, 4, 5, 6], "at most 5"),
])
def test_a_choice_that_cannot_be_kept_is_refused_and_changes_nothing(engine, values, message):
    alert_thresholds.set_thresholds(UnitOfWork(engine), "p", [40])
    with pytest.raises(ServiceError, match=message):
        alert_thresholds.set_thresholds(UnitOfWork(engine), "p", values)
    assert alert_thresholds.thresholds(UnitOfWork(engine), "p")["thresholds"] == [40]


def test_an_unknown_line(engine):
    with pytest.raises(NotFound):
        alert_thresholds.set_thresholds(UnitOfWork(engine), "nope", [10])
