"""Plan versions through the store, on SQLite and PostgreSQL (issue 15 defect 3).

A line on an unlimited preset; the operator re-loads the id as a metered plan.
Balances before the new version's start stay what they were, the account's next
boundary grants the new version, and a late event that replays the account
across that boundary folds each cycle under its own version.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carryover.runtime import Carryover
from carryover.services.ledger import catalog, provisioning, time_window
from carryover.services.ledger import operations as ledger_ops
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
        provisioning.create_account(UnitOfWork(engine), "solo", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), "solo", "+4915100000001", JAN, "tmobile-go5g",
                                 line_id="u1")
        ledger_ops.record_usage(UnitOfWork(engine), "u1", 6 * GB, at(1, 10), at(1, 10), "e1")
        ledger_ops.record_usage(UnitOfWork(engine), "u1", GB, at(2, 5), at(2, 5), "e2")
        before = {t: ledger_ops.balance(UnitOfWork(engine), "u1", t) for t in (at(1, 20), at(2, 9))}

        body = tmp_path / "go5g.yaml"
        body.write_text("id: tmobile-go5g\nkind: metered\nallowance: {data: 5.5GB}\n"
                        "overage: {action: block}\n")
        with UnitOfWork(engine) as uow:
            loaded = catalog.load_plan(uow, body, LOADED)
            uow.commit()
        # From the first boundary after what may already be written: now plus the skew.
        skew = time_window.window().skew
        assert (loaded.version, loaded.next_boundary_after) == (2, LOADED + skew)

        for t, was in before.items():
            assert ledger_ops.balance(UnitOfWork(engine), "u1", t) == was
        assert ledger_ops.balance(UnitOfWork(engine), "u1", at(2,
                                                               20))["available"] == {"data": None}
        march = ledger_ops.balance(UnitOfWork(engine), "u1", at(3, 2))
        assert march["available"] == {"data": 5 * GB + GB // 2}

        # Late usage of 27 February arriving within the grace window on 1 March: the
        # account replays across the boundary; February stays unlimited (version 1),
        # March keeps version 2's grant.
        ledger_ops.record_usage(UnitOfWork(engine), "u1", 2 * GB, at(2, 27), at(3, 1, 1), "late")
        assert ledger_ops.balance(UnitOfWork(engine), "u1", at(2,
                                                               28))["available"] == {"data": None}
        assert ledger_ops.balance(UnitOfWork(engine), "u1", at(3, 2))["available"] == {
            "data": 5 * GB + GB // 2}
    finally:
        dispose_engines()


def test_a_version_loaded_now_leaves_an_input_of_that_instant_alone(db_url: str, tmp_path):
    """Found by the model-based test: a plan change booked at T, then a version of its
    plan loaded `now` at T. The version started at T, so the next replay (a back-dated
    event) granted the change under the new version: history rewritten. A version
    loaded at T now starts after T plus the clock skew, past every written instant."""
    engine = Carryover(get_settings(database_url=db_url)).open()
    own = tmp_path / "own.yaml"

    def load(gb: int, effective: str | None = None) -> catalog.Loaded:
        own.write_text(f"id: own\nkind: metered\nallowance: {{data: {gb}GB}}\n"
                       "overage: {action: block}\n")
        with UnitOfWork(engine) as uow:
            loaded = catalog.load_plan(uow, own, LOADED, effective)
            uow.commit()
        return loaded

    try:
        load(3)
        provisioning.create_account(UnitOfWork(engine), "solo", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), "solo", "+4915100000002", JAN,
                                 "tmobile-data-stash-10gb", line_id="u2")
        ledger_ops.change_plan(UnitOfWork(engine), "u2", "own", "now", LOADED, "to-own")
        told = ledger_ops.balance(UnitOfWork(engine), "u2", LOADED)["available"]["data"]
        loaded = load(1, catalog.NOW)
        ledger_ops.record_usage(UnitOfWork(engine), "u2", GB // 4, at(2, 5), LOADED, "back-dated")
        after = ledger_ops.balance(UnitOfWork(engine), "u2", LOADED)["available"]["data"]
        assert after == told  # the usage is February's, before the change: not the own plan's
        assert loaded.effective_at > LOADED + time_window.window().skew
        with UnitOfWork(engine) as uow, pytest.raises(ValueError, match="write window"):
            catalog.load_plan(uow, own, LOADED, LOADED + time_window.window().skew)
    finally:
        dispose_engines()
