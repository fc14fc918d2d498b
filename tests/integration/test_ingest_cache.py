"""The state an ingest run keeps between chunks never hides another writer's change.

Between two chunks of one run, other writers record an event, grant a top-up and
change a plan on lines the run has rated. The run must notice (the accounts'
versions moved) and rate the next chunks on the new state: the balances equal
those of recording everything one event at a time, in the same order (on SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carryover.adapters.cdr_files import Chunk
from carryover.domain.columnar.state import to_us
from carryover.runtime import Carryover
from carryover.services.ingest import chunks as ingest
from carryover.services.ingest.chunks import ingest_chunks
from carryover.services.ingest.state_cache import AccountCache
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store import ingest_repository
from carryover.store.uow import UnitOfWork

GB = 1024**3
START = datetime(2026, 1, 1, tzinfo=UTC)
LINES = ("a", "b", "c")


def setup(url: str):
    engine = Carryover(get_settings(database_url=url)).open()
    provisioning.create_account(UnitOfWork(engine), "one", 1, "UTC", START)
    provisioning.create_account(UnitOfWork(engine), "two", 10, "Europe/Berlin", START)
    provisioning.create_line(UnitOfWork(engine), "one", "+4915100000001", START,
                             "tmobile-data-stash-10gb", line_id="a")
    provisioning.create_line(UnitOfWork(engine), "one", "+4915100000002", START,
                             "verizon-carryover-8gb", line_id="b")
    provisioning.create_line(UnitOfWork(engine), "two", "+4915100000003", START,
                             "china-mobile-jiezhuan-20gb", line_id="c")
    return engine


def chunk(rows: list[tuple[str, str, datetime, int]]) -> Chunk:
    return Chunk(
        first_row=1,
        event_id=np.array([r[0] for r in rows], dtype=object),
        line=np.array([r[1] for r in rows], dtype=object),
        at=np.array([to_us(r[2]) for r in rows], dtype=np.int64),
        received_at=np.array([to_us(r[2]) for r in rows], dtype=np.int64),
        amount=np.array([r[3] for r in rows], dtype=np.int64),
        unit=np.zeros(len(rows), dtype=np.int8),
        rating_group=np.array([None] * len(rows), dtype=object),
        row=np.arange(1, len(rows) + 1, dtype=np.int64))


def plan() -> list[tuple]:
    """Chunks of events, each followed by what another writer does before the next."""
    steps = []
    for week in range(9):  # crosses the January and February boundaries of both accounts
        at = START + timedelta(days=7 * week, hours=3)
        rows = [(f"w{week}-{line}", line, at + timedelta(minutes=k), (week + k + 1) * GB // 3)
                for k, line in enumerate(LINES)]
        steps.append(("chunk", rows))
        later = at + timedelta(days=2)
        if week == 1:
            steps.append(("usage", ("a", GB, later, "other-1")))
        if week == 3:
            steps.append(("top_up", ("b", 2 * GB, later, "topup-1")))
        if week == 5:
            steps.append(("plan", ("c", "tmobile-data-stash-10gb", later, "change-1")))
        if week == 6:
            steps.append(("usage", ("c", 3 * GB, later, "other-2")))
    return steps


def apply(engine, step: tuple) -> None:
    kind, args = step
    if kind == "usage":
        line, amount, at, ref = args
        ledger_ops.record_usage(UnitOfWork(engine), line, amount, at, at, ref)
    elif kind == "top_up":
        line, amount, at, ref = args
        ledger_ops.top_up(UnitOfWork(engine), line, amount, at, 30, ref)
    else:
        line, plan_id, at, ref = args
        ledger_ops.change_plan(UnitOfWork(engine), line, plan_id, "now", at, ref)


@pytest.mark.parametrize("bound", [None, 1])
def test_other_writers_between_chunks(db_url, tmp_path, monkeypatch, bound):
    if bound is not None:  # a cache that overflows after every chunk: eviction and reload
        monkeypatch.setattr(ingest, "AccountCache",
                            lambda: AccountCache(max_buckets=bound, max_accounts=bound))
        # and rows written in several slices
        monkeypatch.setattr(ingest_repository, "WRITE_SLICE", 2)
    bulk = setup(db_url)  # on both backends: PostgreSQL writes through COPY and staging
    single = setup(f"sqlite:///{tmp_path / 'single.db'}")
    steps = plan()

    def chunks():
        for step in steps:
            if step[0] == "chunk":
                yield "test", chunk(step[1]), []
            else:  # runs while ingest_chunks waits for the next chunk
                apply(bulk, step)

    summary = ingest_chunks(UnitOfWork(bulk), chunks(), "test")
    assert summary.accepted == sum(len(s[1]) for s in steps if s[0] == "chunk")
    for step in steps:
        if step[0] == "chunk":
            for event_id, line, at, amount in step[1]:
                ledger_ops.record_usage(UnitOfWork(single), line, amount, at, at, event_id)
        else:
            apply(single, step)
    end = START + timedelta(days=70)
    expected = {line: ledger_ops.balance(UnitOfWork(single), line, end) for line in LINES}
    assert {line: ledger_ops.balance(UnitOfWork(bulk), line, end) for line in LINES} == expected
    # The same chunks again: every event is a duplicate, found slice by slice.
    again = ingest_chunks(UnitOfWork(bulk),
                          [("test", chunk(s[1]), []) for s in steps if s[0] == "chunk"],
                          "again")
    assert (again.accepted, again.duplicates) == (0, summary.accepted)
    assert {line: ledger_ops.balance(UnitOfWork(bulk), line, end) for line in LINES} == expected
