"""The plan-versions migration on a database made by the schema before it.

Plans stored before versions existed become version 1 of their id, in force
always, with their body, source and load instant; nothing else changes, and the
catalog read back means the same plans.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text

from carryover.services.ledger import catalog
from carryover.store.engine import make_engine
from carryover.store.schema import downgrade, upgrade
from carryover.store.uow import UnitOfWork

MINE = "carryover_0010"
BEFORE = "carryover_0009"
LOADED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_existing_plans_become_version_one(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, BEFORE)
    bodies = catalog.preset_bodies()
    own = {"id": "mine", "allowance": {"data": "3GB", "voice": "60min"},
           "rollover": {"per_cycle_cap": "1GB"}}
    with engine.begin() as conn:
        for body, source in [(bodies["tmobile-go5g"], "preset"), (own, "file")]:
            conn.execute(text("INSERT INTO plans (id, body, source, loaded_at) "
                              "VALUES (:id, :body, :source, :at)"),
                         {"id": body["id"], "body": json.dumps(body), "source": source,
                          "at": LOADED if engine.dialect.name == "postgresql"
                          else LOADED.replace(tzinfo=None)})
    upgrade(engine, MINE)

    with UnitOfWork(engine) as uow:
        plans = uow.plans.all()
        rows = uow.plans.version_rows_of(["mine", "tmobile-go5g"])
    assert sorted(plans) == ["mine", "tmobile-go5g"]
    for plan_id, source, body in [("mine", "file", own),
                                  ("tmobile-go5g", "preset", bodies["tmobile-go5g"])]:
        [row] = rows[plan_id]
        assert (row.version, row.source, row.recorded_at) == (1, source, LOADED)
        assert (row.effective_at, row.next_boundary_after) == (None, None)
        assert row.body == body
        [version] = plans.versions(plan_id)
        assert version.version == 1 and version.starts(None) is None  # always in force
    assert plans["mine"].rollover.per_cycle_cap == {"data": 1024**3}

    downgrade(engine, BEFORE)  # and back: the plans are still there, as they were
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, source FROM plans ORDER BY id")).all() == [
            ("mine", "file"), ("tmobile-go5g", "preset")]
