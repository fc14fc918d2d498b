"""Plan versions through the store, on SQLite and PostgreSQL (issue 15 defect 3).

A line on an unlimited preset; the operator re-loads the id as a metered plan.
Balances before the new version's start stay what they were, the account's next
boundary grants the new version, and a late event that replays the account
across that boundary folds each cycle under its own version.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.runtime import Carryover
from carryover.services import catalog, ledger_ops, provisioning
from carryover.settings import get_settings
from carryover.store.engine import dispose_engines
from carryover.store.uow import UnitOfWork

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
LOADED = datetime(2026, 2, 10, 12, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_a_new_version_changes_nothing_before_it_and_grants_after(db_url: str, tmp_path):
    engine = Carryover(get_settings(database_url=db_url)).open()
    try:
        provisioning.create_account(engine, "solo", 1, "UTC", JAN)
        provisioning.create_line(engine, "solo", "+4915100000001", JAN, "tmobile-go5g",
                                 line_id="u1")
        ledger_ops.record_usage(engine, "u1", 6 * GB, at(1, 10), at(1, 10), "e1")
        ledger_ops.record_usage(engine, "u1", GB, at(2, 5), at(2, 5), "e2")
        before = {t: ledger_ops.balance(engine, "u1", t) for t in (at(1, 20), at(2, 9))}

        body = tmp_path / "go5g.yaml"
        body.write_text("id: tmobile-go5g\nkind: metered\nallowance: {data: 5.5GB}\n"
                        "overage: {action: block}\n")
        with UnitOfWork(engine) as uow:
            loaded = catalog.load_plan(uow, body, LOADED)
            uow.commit()
        assert (loaded.version, loaded.next_boundary_after) == (2, LOADED)

        for t, was in before.items():
            assert ledger_ops.balance(engine, "u1", t) == was
        assert ledger_ops.balance(engine, "u1", at(2, 20))["available"] == {"data": None}
        march = ledger_ops.balance(engine, "u1", at(3, 2))
        assert march["available"] == {"data": 5 * GB + GB // 2}

        # Late usage of 27 February arriving within the grace window on 1 March: the
        # account replays across the boundary; February stays unlimited (version 1),
        # March keeps version 2's grant.
        ledger_ops.record_usage(engine, "u1", 2 * GB, at(2, 27), at(3, 1, 1), "late")
        assert ledger_ops.balance(engine, "u1", at(2, 28))["available"] == {"data": None}
        assert ledger_ops.balance(engine, "u1", at(3, 2))["available"] == {
            "data": 5 * GB + GB // 2}
    finally:
        dispose_engines()
