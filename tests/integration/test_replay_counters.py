"""A replay that drops a counter to zero writes the zero.

Found by tests/integration/test_model_based.py: usage at T with nothing to cover
it booked overage; a top-up at the same T then sorts before it (top-ups rank
before usage), so the replay covers the usage and has no overage counter at all.
The store wrote only the counters the replay had, and the stored overage stayed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

T = datetime(2021, 1, 3, 9, 30, tzinfo=UTC)


def test_a_replay_clears_an_overage_it_no_longer_has(db_url: str) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "a", 1, "UTC", T)
    provisioning.create_line(UnitOfWork(engine), "a", "+14155550100", T, "tmobile-data-stash-10gb",
                             line_id="l0")
    big = 2**50 - 1
    ledger_ops.record_usage(UnitOfWork(engine), "l0", big, T, T, "ev1")
    assert ledger_ops.balance(UnitOfWork(engine), "l0", T)["cycle"]["overage"]["data"] > 0
    ledger_ops.top_up(UnitOfWork(engine), "l0", big, T, None, "tu1")
    assert ledger_ops.balance(UnitOfWork(engine), "l0", T)["cycle"]["overage"]["data"] == 0
