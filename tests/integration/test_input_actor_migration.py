"""Migration carryover_0011 on a database the previous schema made, on both backends.

Before it, inputs were stored without who gave them or when they were recorded. After
the upgrade those rows read back with neither (shown as "not kept"), replay as before,
and every new input is stored with its actor and the instant it was recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, inspect, select

from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.store import codec
from carryover.store.engine import make_engine
from carryover.store.repository import AccountRepository
from carryover.store.schema import current_revision, downgrade, upgrade
from carryover.store.tables import inputs
from carryover.store.uow import UnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
PREVIOUS = "carryover_0010"
GB = 1024 ** 3


def record_as_before(self, account_id, item, calendar, grace, actor=None, recorded_at=None):
    """How the previous code stored an input other than usage: no actor, no recorded_at."""
    kind, body = codec.encode(item)
    self.conn.execute(insert(inputs).values(
        account_id=account_id, input_id=item.id, kind=kind, line=item.line, at=item.at,
        body=body))


def test_inputs_of_the_previous_schema_survive_and_new_ones_carry_their_actor(
        db_url, monkeypatch):
    engine = make_engine(db_url)
    upgrade(engine, "head")
    with UnitOfWork(engine) as uow:
        catalog.seed_presets(uow, JAN)
        uow.commit()
    with monkeypatch.context() as patched:
        patched.setattr(AccountRepository, "record", record_as_before)
        provisioning.create_account(UnitOfWork(engine), "old", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), "old", "+14155550901", JAN, "travel-5gb-30d",
                                 line_id="L1")
        ledger_ops.top_up(UnitOfWork(engine), "L1", GB, JAN + timedelta(days=2), 30, "topup-old")
    before = ledger_ops.balance(UnitOfWork(engine), "L1", JAN + timedelta(days=3))
    # Back to the previous schema (later revisions, the bitemporal ledger included, are
    # undone with it): the rows as that schema holds them, with no actor column.
    downgrade(engine, PREVIOUS)
    with engine.connect() as conn:
        assert "actor" not in {c["name"] for c in inspect(conn).get_columns("inputs")}

    upgrade(engine, "head")

    assert current_revision(engine) != PREVIOUS
    with engine.connect() as conn:
        rows = conn.execute(select(inputs.c.input_id, inputs.c.actor, inputs.c.recorded_at)
                            .order_by(inputs.c.input_id)).all()
    assert [(r.input_id, r.actor, r.recorded_at) for r in rows] == [
        ("open:L1", None, None), ("topup-old", None, None)]
    assert ledger_ops.balance(UnitOfWork(engine), "L1", JAN + timedelta(days=3)) == before

    ledger_ops.top_up(UnitOfWork(engine), "L1", GB, JAN + timedelta(days=4), 30, "topup-new")
    changes = ledger_ops.statement(UnitOfWork(engine), "L1", JAN + timedelta(days=5)).changes
    assert [(c["ref"], c["actor"]) for c in changes] == [
        ("open:L1", None), ("topup-old", None), ("topup-new", "cli")]
    assert changes[0]["recorded_at"] is None
    recorded = datetime.fromisoformat(changes[2]["recorded_at"])
    assert abs(recorded - datetime.now(UTC)) < timedelta(minutes=5)
