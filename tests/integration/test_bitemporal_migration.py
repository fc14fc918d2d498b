"""The bitemporal-ledger migration on a database made by the schema before it.

Every ledger row of the old schema had one instant, `at`: it becomes both the
entry's effective instant and its recording instant, no row is lost or changed
otherwise, and the engine reads the rows back as entries (statements included).
Downgrading gives the old table back with the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from carryover.store.engine import make_engine
from carryover.store.schema import downgrade, upgrade
from carryover.store.uow import UnitOfWork

MINE = "carryover_0012"
BEFORE = "carryover_0011"
T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 2, 1, 0, 0, 0, 123456, tzinfo=UTC)


def _stored(engine, t: datetime):
    return t if engine.dialect.name == "postgresql" else t.replace(tzinfo=None)


def test_existing_entries_keep_their_instant_as_effective_and_recorded(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, BEFORE)
    rows = [(T1, "grant", 10, "a/data/allowance/2026-01-01T00:00:00Z", "a", None, "o1", ""),
            (T2, "rollover_out", 4, "a/data/allowance/2026-01-01T00:00:00Z", "a", None,
             "boundary", "carried"),
            (T2, "overage", 7, None, "a", "a", "u9", "")]
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO accounts (name, cycle_day, timezone, grace_seconds, created_at, "
            "version) VALUES ('acme', 1, 'UTC', 172800, :at, 0)"), {"at": _stored(engine, T1)})
        account = conn.execute(text("SELECT id FROM accounts")).scalar_one()
        for at, kind, amount, bucket, owner, line, ref, note in rows:
            conn.execute(text(
                "INSERT INTO ledger_entries (account_id, at, kind, unit, amount, bucket_id, "
                "owner, line, ref, note) VALUES (:a, :at, :kind, 'data', :amount, :bucket, "
                ":owner, :line, :ref, :note)"),
                {"a": account, "at": _stored(engine, at), "kind": kind, "amount": amount,
                 "bucket": bucket, "owner": owner, "line": line, "ref": ref, "note": note})
    upgrade(engine, MINE)

    with UnitOfWork(engine) as uow:
        entries = uow.accounts.entries(account)
    assert [(e.effective_at, e.recorded_at, str(e.kind), e.amount, e.bucket_id, e.owner,
             e.line, e.ref, e.note) for e in entries] == [
        (at, at, kind, amount, bucket, owner, line, ref, note)
        for at, kind, amount, bucket, owner, line, ref, note in rows]
    with UnitOfWork(engine) as uow:
        before_feb = uow.accounts.entries(account, before=T2)
    assert [e.kind for e in before_feb] == ["grant"]

    downgrade(engine, BEFORE)
    with engine.connect() as conn:
        back = conn.execute(text(
            "SELECT kind, amount, ref FROM ledger_entries ORDER BY seq")).all()
    assert back == [(kind, amount, ref) for _, kind, amount, _, _, _, ref, _ in rows]
