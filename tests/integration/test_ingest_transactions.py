"""`ingest_chunks` with `transaction_rows`: one transaction per run of chunks.

The CLI reads a file in chunks of at most 200,000 rows and commits every
`--chunk-rows` rows: a transaction takes chunks of one file until it holds that
many rows, checks and inserts each as it comes, and rates and writes its lines
once, at its end. What a commit reports, what a failure loses and what the
ledger holds are checked here, on both backends.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import text

from carryover.adapters.cdr_files import Chunk
from carryover.domain.columnar.state import to_us
from carryover.services.ingest.chunks import ingest_chunks
from carryover.store.uow import UnitOfWork
from tests.integration.test_ingest_cache import GB, START, setup

DAY = START + timedelta(days=2)


def chunk(first_row: int, count: int, line: str = "a") -> Chunk:
    rows = range(first_row, first_row + count)
    at = [to_us(DAY + timedelta(minutes=r)) for r in rows]
    return Chunk(
        first_row=first_row,
        event_id=np.array([f"ev{r}" for r in rows], dtype=object),
        line=np.array([line] * count, dtype=object),
        at=np.array(at, dtype=np.int64), received_at=np.array(at, dtype=np.int64),
        amount=np.full(count, GB // 100, dtype=np.int64), unit=np.zeros(count, dtype=np.int8),
        rating_group=np.array([None] * count, dtype=object),
        row=np.array(list(rows), dtype=np.int64))


def feed(file: str, sizes: list[int], start: int = 1):
    for size in sizes:
        yield file, chunk(start, size), []
        start += size


def stored(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_a_transaction_takes_chunks_until_it_holds_its_rows(db_url):
    engine = setup(db_url)
    commits = []
    summary = ingest_chunks(UnitOfWork(engine), feed("f", [3] * 10), "t",
                            on_commit=commits.append, transaction_rows=7)
    assert summary.accepted == 30
    assert [(c.chunks, c.rows, c.last) for c in commits] == [
        (1, 9, ("f", 1, 9)), (2, 18, ("f", 10, 18)), (3, 27, ("f", 19, 27)),
        (4, 30, ("f", 28, 30))]
    assert stored(engine, "SELECT count(*) FROM usage_events") == 30


def test_a_transaction_never_spans_two_files(db_url):
    engine = setup(db_url)
    commits = []

    def two_files():
        yield from feed("one", [2, 2])
        yield from feed("two", [2, 2], start=5)

    ingest_chunks(UnitOfWork(engine), two_files(), "t", on_commit=commits.append,
                  transaction_rows=100)
    assert [c.last for c in commits] == [("one", 1, 4), ("two", 5, 8)]


def test_a_failure_in_a_later_chunk_loses_its_whole_transaction_only(db_url):
    engine = setup(db_url)
    commits = []

    def breaks():
        yield from feed("f", [4, 4])     # the first transaction: 8 rows
        yield "f", chunk(9, 4), []       # the second takes this one, then fails
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="disk went away"):
        ingest_chunks(UnitOfWork(engine), breaks(), "t", on_commit=commits.append,
                      transaction_rows=8)
    assert [(c.rows, c.last) for c in commits] == [(8, ("f", 1, 8))]
    assert stored(engine, "SELECT count(*) FROM usage_events") == 8
    # What the failed transaction rated is not stored either: its debits are the first's.
    assert stored(engine, "SELECT sum(amount) FROM ledger_entries WHERE kind = 'debit'") \
        == 8 * (GB // 100)


@pytest.mark.parametrize(("transaction", "debits"), [(None, 3), (9, 1)])
def test_a_line_is_written_once_per_transaction(db_url, transaction, debits):
    # Three chunks of one line inside one stretch of its allowance: one debit entry per
    # transaction, so one for a transaction that takes all three.
    engine = setup(db_url)
    ingest_chunks(UnitOfWork(engine), feed("f", [3, 3, 3]), "t", transaction_rows=transaction)
    assert stored(engine, "SELECT count(*) FROM ledger_entries WHERE kind = 'debit'") == debits
    assert stored(engine, "SELECT count(*) FROM usage_events") == 9
