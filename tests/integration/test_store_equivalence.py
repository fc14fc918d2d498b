"""The store-backed services give exactly the balances of `carryover simulate`.

Every file in examples/ is replayed step by step through the services (one unit
of work per step, on real SQLite and PostgreSQL) and each check is compared
with the in-memory simulation of the same file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from carryover.adapters.scenario_file import load_scenario
from carryover.domain.buckets import POOL
from carryover.domain.inputs import ChangePlan, Gift, OpenLine, SetLimit, TopUp, Usage
from carryover.plan_files import load_presets
from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.scenarios.simulate import run
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def replay_through_services(engine, path: Path) -> list[dict]:
    scenario = load_scenario(path, load_presets())
    raw = yaml.safe_load(path.read_text())
    inline = raw.get("plans") or []
    if isinstance(inline, dict):
        inline = [{"id": k, **(v or {})} for k, v in inline.items()]
    with UnitOfWork(engine) as uow:
        for body in inline:
            uow.plans.upsert(body["id"], body, "file", scenario.start)
        uow.commit()
    opening = {item.line: item for item in scenario.opening if isinstance(item, OpenLine)}
    pool = opening.get(POOL)
    provisioning.create_account(
        UnitOfWork(engine), "acct", scenario.calendar.cycle_day, scenario.calendar.timezone,
        scenario.start, pool.plan_id if pool else None, scenario.grace)
    for n, name in enumerate(scenario.lines):
        item = opening[name]
        provisioning.create_line(UnitOfWork(engine), "acct", f"+1415555{n:04d}", scenario.start,
                                 item.plan_id, line_id=name, member=item.member)
    for item in scenario.opening:
        if isinstance(item, SetLimit):
            ledger_ops.set_limit(UnitOfWork(engine), item.line, item.amount, item.at, item.id)
    checks: list[dict] = []
    for step in scenario.steps:
        item = step.item
        if item is None:
            checks.extend(ledger_ops.balance(UnitOfWork(engine), line,
                                             step.at) for line in step.check_lines)
        elif isinstance(item, Usage):
            ledger_ops.record_usage(UnitOfWork(engine), item.line, item.amount, item.at,
                                    item.received_at or item.at, item.id, item.unit,
                                    item.rating_group)
        elif isinstance(item, TopUp):
            ledger_ops.top_up(UnitOfWork(engine), item.line, item.amount, item.at, item.valid_days,
                              item.id, item.unit)
        elif isinstance(item, ChangePlan):
            ledger_ops.change_plan(UnitOfWork(engine), item.line, item.plan_id, item.effective,
                                   item.at, item.id)
        elif isinstance(item, Gift):
            ledger_ops.gift(UnitOfWork(engine), item.from_line, item.line, item.amount, item.at,
                            item.id)
        elif isinstance(item, SetLimit):
            ledger_ops.set_limit(UnitOfWork(engine), item.line, item.amount, item.at, item.id)
    return checks


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_services_match_simulate(db_url, path):
    engine = Carryover(get_settings(database_url=db_url)).open()
    expected = run(load_scenario(path, load_presets())).checks
    assert expected, f"{path.name} has no checks to compare"
    assert replay_through_services(engine, path) == expected
