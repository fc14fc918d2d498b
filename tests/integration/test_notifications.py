"""Notifications come from stored state: once per line per cycle per kind, on every path."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from carryover.adapters.cdr_files import read_usage
from carryover.runtime import Carryover
from carryover.services.ingest.chunks import ingest_chunks
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.services.notify.notices import emit_notifications
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)


def setup(db_url: str, plan: str = "tmobile-data-stash-10gb"):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN, plan, line_id="t")
    return engine


def events(engine) -> list[tuple[str, str, dict]]:
    with UnitOfWork(engine) as uow:
        rows = uow.conn.execute(select(outbox.c.line, outbox.c.kind, outbox.c.payload)
                                .order_by(outbox.c.id)).all()
    return [(r.line, r.kind, r.payload) for r in rows]


def kinds(engine) -> list[str]:
    return [kind for _, kind, _ in events(engine)]


def test_thresholds_fire_once_each_and_throttle_when_out(db_url):
    engine = setup(db_url)
    at = JAN + timedelta(days=3)
    ledger_ops.record_usage(UnitOfWork(engine), "t", 5 * GB, at, at, "e1")
    assert kinds(engine) == ["usage_50"]
    ledger_ops.record_usage(UnitOfWork(engine), "t", 3 * GB, at, at, "e2")
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB // 2, at, at, "e3")
    assert kinds(engine) == ["usage_50", "usage_80"]
    # The same state evaluated again (a read, a direct call) adds nothing.
    ledger_ops.balance(UnitOfWork(engine), "t", at)
    with UnitOfWork(engine) as uow:
        emit_notifications(uow, [1], at)
        uow.commit()
    assert kinds(engine) == ["usage_50", "usage_80"]
    ledger_ops.record_usage(UnitOfWork(engine), "t", 2 * GB, at, at, "e4")
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, at, at, "e5")
    assert sorted(kinds(engine)) == ["throttled", "usage_100", "usage_50", "usage_80"]
    payload = {kind: p for _, kind, p in events(engine)}
    assert payload["usage_80"]["allowance"] == 10 * GB
    assert payload["usage_80"]["used"] == 8 * GB  # written by e2, not rewritten by e3
    assert payload["usage_50"]["msisdn"] == "+4915100000001"
    assert payload["usage_50"]["account"] == "acct"
    assert payload["throttled"]["plan"] == "tmobile-data-stash-10gb"
    assert payload["usage_50"]["cycle_start"] == JAN.isoformat()


def test_batch_emits_in_its_transaction(db_url):
    engine = setup(db_url)
    at = JAN + timedelta(days=2)
    rows = [UsageRow(f"b{k}", "t", at, 3 * GB, at) for k in range(4)]
    result = record_batch(UnitOfWork(engine), rows)
    assert result.accepted == 4
    assert sorted(kinds(engine)) == ["throttled", "usage_100", "usage_50", "usage_80"]
    record_batch(UnitOfWork(engine), rows)  # duplicates: nothing new
    assert len(kinds(engine)) == 4


def test_ingest_chunks_emit_once(db_url, tmp_path):
    engine = setup(db_url)
    path = tmp_path / "cdr.csv"
    at = JAN + timedelta(days=5)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "rating_group", "received_at"])
        for k in range(12):
            when = at + timedelta(minutes=k)
            out.writerow([f"c{k}", "t", when.isoformat(), GB, "", when.isoformat()])

    def chunks():
        for chunk, rejects in read_usage(path, chunk_rows=2, now_us=0):
            yield str(path), chunk, rejects

    summary = ingest_chunks(UnitOfWork(engine), chunks(), "test")
    assert summary.accepted == 12
    assert sorted(kinds(engine)) == ["throttled", "usage_100", "usage_50", "usage_80"]
    again = ingest_chunks(UnitOfWork(engine), chunks(), "again")
    assert again.duplicates == 12
    assert len(kinds(engine)) == 4


def test_rollover_credited_at_the_boundary_read(db_url):
    engine = setup(db_url, "verizon-carryover-8gb")
    at = JAN + timedelta(days=19)
    ledger_ops.record_usage(UnitOfWork(engine), "t", 3 * GB, at, at, "e1")
    assert kinds(engine) == []
    feb = datetime(2026, 2, 1, tzinfo=UTC)
    ledger_ops.balance(UnitOfWork(engine), "t", feb)
    credited = [(line, p) for line, kind, p in events(engine) if kind == "rollover_credited"]
    assert len(credited) == 1
    line, payload = credited[0]
    assert line == "t" and payload["amount"] == 5 * GB
    assert payload["cycle_start"] == feb.isoformat()
    ledger_ops.balance(UnitOfWork(engine), "t", feb + timedelta(hours=1))
    assert kinds(engine).count("rollover_credited") == 1


def test_the_notice_follows_the_plan_version_in_force_not_the_latest(db_url):
    # A version that blocks instead of throttling, loaded to start next cycle: this
    # cycle's notice is still "throttled", on the stored-state path and on the book's.
    engine = setup(db_url)
    at = JAN + timedelta(days=3)
    ledger_ops.record_usage(UnitOfWork(engine), "t", 11 * GB, at, at, "e1")
    assert "throttled" in kinds(engine)
    body = catalog.preset_bodies()["tmobile-data-stash-10gb"]
    with UnitOfWork(engine) as uow:
        uow.plans.add_version(body["id"], {**body, "overage": {"action": "block"}}, "file",
                              at, None, at)
        uow.commit()
    later = at + timedelta(hours=1)
    with UnitOfWork(engine) as uow:
        emit_notifications(uow, [1], later)
        uow.commit()
    ledger_ops.record_usage(UnitOfWork(engine), "t", GB, later, later, "e2")
    assert "blocked" not in kinds(engine)
    assert kinds(engine).count("throttled") == 1
