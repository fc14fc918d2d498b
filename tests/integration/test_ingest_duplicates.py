"""Stored events met again by `carryover ingest`: found before any account is read.

A chunk's ids are probed first (a sample, then all of them when one is stored), so a
file ingested before costs the lookups and nothing else; ids the probe misses are
still caught by the insert, exactly. Balances are those of ingesting every event
once, on both backends.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from carryover.services.ingest import chunks as ingest
from carryover.services.ingest.chunks import ingest_chunks
from carryover.services.ingest.state_cache import AccountCache
from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork
from tests.integration.test_ingest_cache import GB, LINES, START, chunk, setup

END = START + timedelta(days=20)


def rows(first: int, count: int) -> list[tuple]:
    return [(f"e{n}", LINES[n % 3], START + timedelta(days=1, minutes=n), (n + 1) * GB // 10)
            for n in range(first, first + count)]


def balances(engine) -> dict:
    return {line: ledger_ops.balance(UnitOfWork(engine), line, END) for line in LINES}


def test_a_rerun_with_new_rows_counts_only_the_new(db_url, tmp_path):
    engine = setup(db_url)
    once = setup(f"sqlite:///{tmp_path / 'once.db'}")
    ingest_chunks(UnitOfWork(engine), [("f", chunk(rows(0, 6)), [])], "first")
    both = sorted(rows(0, 6) + rows(6, 4), key=lambda r: r[2])
    again = ingest_chunks(UnitOfWork(engine), [("f", chunk(both), [])], "again")
    assert (again.accepted, again.duplicates) == (4, 6)
    ingest_chunks(UnitOfWork(once), [("f", chunk(both), [])], "once")
    assert balances(engine) == balances(once)


def test_a_stored_id_the_probe_misses_is_caught_by_the_insert(db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "PROBE", 2)  # the first and the last id only
    engine = setup(db_url)
    once = setup(f"sqlite:///{tmp_path / 'once.db'}")
    ingest_chunks(UnitOfWork(engine), [("f", chunk(rows(5, 1)), [])], "first")
    middle = rows(0, 12)  # e5, stored, is neither first nor last
    again = ingest_chunks(UnitOfWork(engine), [("f", chunk(middle), [])], "again")
    assert (again.accepted, again.duplicates) == (11, 1)
    ingest_chunks(UnitOfWork(once), [("f", chunk(middle), [])], "once")
    assert balances(engine) == balances(once)


def test_a_stored_file_reads_no_account_state(db_url, monkeypatch):
    engine = setup(db_url)
    data = rows(0, 9)
    ingest_chunks(UnitOfWork(engine), [("f", chunk(data), [])], "first")
    before = balances(engine)

    def no_reads(self, store, account_ids):
        raise AssertionError(f"state read for {account_ids} of a stored file")

    monkeypatch.setattr(AccountCache, "prepare", no_reads)
    again = ingest_chunks(UnitOfWork(engine), [("f", chunk(data), [])], "again")
    assert (again.accepted, again.duplicates) == (0, 9)
    assert balances(engine) == before


@pytest.mark.parametrize("probe", [1, 64])
def test_duplicates_inside_a_chunk_and_stored_ones_are_told_apart(db_url, monkeypatch, probe):
    monkeypatch.setattr(ingest, "PROBE", probe)
    engine = setup(db_url)
    ingest_chunks(UnitOfWork(engine), [("f", chunk(rows(0, 3)), [])], "first")
    repeated = rows(0, 3) + rows(3, 2) + rows(3, 2)  # 3 stored, 2 new, each new twice
    again = ingest_chunks(UnitOfWork(engine), [("f", chunk(repeated), [])], "again")
    assert (again.accepted, again.duplicates) == (2, 5)
