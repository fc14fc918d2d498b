"""The notification kinds beyond usage thresholds: expiring rollover, member limit, blocked.

Each fires once per line per cycle, however often the same state is written or
read again, on SQLite and PostgreSQL (db_url).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.integration.test_notifications import GB, JAN, events, kinds, setup

FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def only(engine, kind: str) -> list[tuple[str, dict]]:
    return [(line, payload) for line, k, payload in events(engine) if k == kind]


def test_rollover_expiring_within_seven_days_of_a_write(db_url):
    # Verizon rolls unused allowance into the next cycle, expiring at its end (Mar 1).
    engine = setup(db_url, "verizon-carryover-8gb")
    jan = JAN + timedelta(days=19)
    ledger_ops.record_usage(UnitOfWork(engine), "t", 3 * GB, jan, jan, "e1")
    feb = FEB + timedelta(days=10)
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, feb, feb, "e2")  # 19 days before the end
    assert "rollover_credited" in kinds(engine)
    assert only(engine, "rollover_expiring") == []
    late = MAR - timedelta(days=5)
    # allowance first: 5 GB stay
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, late, late, "e3")
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, late + timedelta(days=1),
                            late + timedelta(days=1), "e4")
    ledger_ops.balance(UnitOfWork(engine), "t", late + timedelta(days=2))
    expiring = only(engine, "rollover_expiring")
    assert len(expiring) == 1
    line, payload = expiring[0]
    assert line == "t"
    assert payload["remaining"] == 5 * GB
    assert payload["valid_until"] == MAR.isoformat()
    assert payload["cycle_start"] == FEB.isoformat()


def test_member_limit_reached_once(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", JAN, "att-mobile-share-15gb")
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000011", JAN, line_id="m1")
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000012", JAN, line_id="m2")
    at = JAN + timedelta(days=2)
    ledger_ops.set_limit(UnitOfWork(engine), "m1", 2 * GB, at, "lim-1")
    ledger_ops.record_usage(UnitOfWork(engine), "m1", GB, at, at, "e1")
    assert only(engine, "member_limit_reached") == []
    ledger_ops.record_usage(UnitOfWork(engine), "m1", GB, at, at, "e2")
    # beyond the limit: still once
    ledger_ops.record_usage(UnitOfWork(engine), "m1", GB, at, at, "e3")
    ledger_ops.record_usage(UnitOfWork(engine), "m2", 3 * GB, at, at, "e4")  # no limit on m2
    ledger_ops.balance(UnitOfWork(engine), "m1", at + timedelta(days=1))
    reached = only(engine, "member_limit_reached")
    assert len(reached) == 1
    line, payload = reached[0]
    assert line == "m1"
    assert payload["limit"] == 2 * GB
    assert payload["used_from_pool"] == 2 * GB
    assert payload["account"] == "fam"


def test_travel_pack_running_out_is_blocked_once(db_url):
    engine = setup(db_url, "travel-5gb-30d")
    at = JAN + timedelta(days=4)
    ledger_ops.record_usage(UnitOfWork(engine), "t", 4 * GB, at, at, "e1")
    assert only(engine, "blocked") == []
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, at, at, "e2")  # the pack runs out
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, at + timedelta(hours=1),
                            at + timedelta(hours=1), "e3")
    ledger_ops.qos_at(UnitOfWork(engine), "t", at + timedelta(hours=2))
    blocked = only(engine, "blocked")
    assert len(blocked) == 1
    line, payload = blocked[0]
    assert line == "t"
    assert payload["plan"] == "travel-5gb-30d"
    assert payload["used"] == 5 * GB
    assert "kbps" not in payload
    assert sorted(kinds(engine)) == ["blocked", "usage_100", "usage_50", "usage_80"]
