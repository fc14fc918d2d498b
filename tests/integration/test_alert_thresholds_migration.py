"""Migration carryover_0015 on both backends: lines get `alert_thresholds`.

Lines of the previous schema come through with none picked (null), so their notices
stay those of the defaults; a line can then pick its own; the downgrade drops the
column and keeps the lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select

from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.services.notify import alert_thresholds
from carryover.store.engine import make_engine
from carryover.store.schema import downgrade, upgrade
from carryover.store.tables import lines
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

JAN = datetime(2026, 1, 1, tzinfo=UTC)
PREVIOUS = "carryover_0014"
GB = 1024**3


def columns(engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns("lines")}


def test_lines_of_the_previous_schema_keep_the_defaults_and_may_pick(db_url):
    engine = make_engine(db_url)
    upgrade(engine, "head")
    with UnitOfWork(engine) as uow:
        catalog.seed_presets(uow, JAN)
        uow.commit()
    provisioning.create_account(UnitOfWork(engine), "old", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "old", "+14155550901", JAN,
                             "tmobile-data-stash-10gb", line_id="L1")
    provisioning.create_line(UnitOfWork(engine), "old", "+14155550902", JAN,
                             "tmobile-data-stash-10gb", line_id="L2")
    downgrade(engine, PREVIOUS)
    assert "alert_thresholds" not in columns(engine)

    upgrade(engine, "head")

    assert "alert_thresholds" in columns(engine)
    with engine.connect() as conn:
        assert conn.execute(select(lines.c.id, lines.c.alert_thresholds)
                            .order_by(lines.c.id)).all() == [("L1", None), ("L2", None)]
    assert alert_thresholds.thresholds(UnitOfWork(engine), "L1")["default"] is True
    alert_thresholds.set_thresholds(UnitOfWork(engine), "L2", [30])
    at = JAN + timedelta(days=2)
    for line in ("L1", "L2"):
        ledger_ops.record_usage(UnitOfWork(engine), line, 6 * GB, at, at, f"{line}-e")
    with engine.connect() as conn:
        fired = conn.execute(select(outbox.c.line, outbox.c.kind)
                             .order_by(outbox.c.line)).all()
    assert fired == [("L1", "usage_50"), ("L2", "usage_30")]

    downgrade(engine, PREVIOUS)
    assert "alert_thresholds" not in columns(engine)
    with engine.connect() as conn:
        assert conn.execute(select(lines.c.id).order_by(lines.c.id)).scalars().all() == [
            "L1", "L2"]
