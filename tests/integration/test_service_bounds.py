"""Services bound amounts themselves, not only the CLI, the API and file rows do.

Found by tests/integration/test_model_based.py: `ledger_ops.record_usage` wrote the
event row before the book checked its amount, so 2^63 bytes ended in an
OverflowError from the driver; `batch.record_batch` (the demo's and the API's
batch path) handed 2^50 + 1 to the ingest fold, which accepted it, and 2^63 to
numpy, which raised.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from carryover.domain.bounds import MAX_EVENT
from carryover.runtime import Carryover
from carryover.services.errors import ServiceError
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store import tables
from carryover.store.uow import UnitOfWork

T = datetime(2026, 1, 3, 9, 30, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "a", 1, "UTC", T)
    provisioning.create_line(UnitOfWork(engine), "a", "+14155550100", T, "tmobile-data-stash-10gb",
                             line_id="l0")
    return engine


def _events(engine) -> int:
    with UnitOfWork(engine) as uow:
        return uow.conn.execute(select(func.count()).select_from(tables.usage_events)).scalar()


@pytest.mark.parametrize("amount", [MAX_EVENT + 1, 2**63, 2**64])
def test_record_usage_refuses_past_the_bound_before_writing(engine, amount: int) -> None:
    with pytest.raises(ServiceError, match=r"amount: .* more than 2\^50"):
        ledger_ops.record_usage(UnitOfWork(engine), "l0", amount, T, T, "big")
    assert _events(engine) == 0
    ledger_ops.record_usage(UnitOfWork(engine), "l0", MAX_EVENT, T, T, "at-the-bound")
    assert _events(engine) == 1


def test_record_batch_rejects_rows_past_the_bound_by_index(engine) -> None:
    rows = [UsageRow("ok-1", "l0", T, 1024, T), UsageRow("big-1", "l0", T, MAX_EVENT + 1, T),
            UsageRow("ok-2", "l0", T, MAX_EVENT, T), UsageRow("big-2", "l0", T, 2**63, T)]
    result = record_batch(UnitOfWork(engine), rows)
    assert result.accepted == 2
    assert [n for n, _ in result.rejected] == [1, 3]
    assert all("more than 2^50" in reason for _, reason in result.rejected)
    assert _events(engine) == 2
    used = ledger_ops.balance(UnitOfWork(engine), "l0", T)["cycle"]["used"]["data"]
    assert used == 1024 + MAX_EVENT
