"""Amount bounds where usage enters the store (docs/semantics.md, "Bounds").

Reproductions of issue 15 defect 2 and issue 22 item 9: twelve ingest rows of
10^18 - 1 bytes were all accepted and wrapped the cycle's totals (statement
`used` wrong, the next closing a large negative number); 2^63 - 1 bytes through
the single-event path were accepted. Now a row past 2^50 is a reject with its row
number, and the events that would take a line's stored usage total past 2^62 are
refused (ingest and single events alike), while everything up to the bound is
exact.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from carryover.adapters.cdr_files import read_usage
from carryover.domain.bounds import MAX_EVENT, MAX_TOTAL
from carryover.runtime import Carryover
from carryover.services.errors import ServiceError
from carryover.services.ingest.chunks import ingest_chunks
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

START = datetime(2026, 1, 1, tzinfo=UTC)
GB = 1024**3


def setup(url: str):
    engine = Carryover(get_settings(database_url=url)).open()
    provisioning.create_account(UnitOfWork(engine), "acme", 1, "UTC", START)
    provisioning.create_line(UnitOfWork(engine), "acme", "+4915100000001", START,
                             "tmobile-data-stash-10gb", line_id="a")
    return engine


def ingest(engine, folder, rows, name="cdr.csv"):
    path = folder / name
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "received_at"])
        for event_id, at, amount in rows:
            out.writerow([event_id, "a", at.isoformat(), amount, at.isoformat()])
    rejects = []
    chunks = ((str(path), c, r) for c, r in read_usage(path, chunk_rows=5000, now_us=0))
    summary = ingest_chunks(UnitOfWork(engine), chunks, "test", on_rejects=rejects.extend)
    return summary, rejects


def test_twelve_rows_of_a_billion_billion_bytes_are_refused(db_url, tmp_path) -> None:
    engine = setup(db_url)
    at = START + timedelta(days=1)
    rows = [(f"e{k}", at + timedelta(minutes=k), 999_999_999_999_999_999) for k in range(12)]
    rows.append(("ok", at + timedelta(hours=1), GB))
    summary, rejects = ingest(engine, tmp_path, rows)
    assert (summary.accepted, summary.rejected) == (1, 12)
    assert [r.row for r in rejects] == list(range(1, 13))
    assert all("bytes: too large (more than 2^50" in r.reason for r in rejects)
    january = ledger_ops.statement(UnitOfWork(engine), "a", START + timedelta(days=10)).as_dict()
    assert january["units"]["data"]["used"] == GB
    february = ledger_ops.statement(UnitOfWork(engine), "a", START + timedelta(days=40)).as_dict()
    assert february["units"]["data"]["opening"] == 10 * GB - GB  # all of January's rest rolled over
    assert february["units"]["data"]["closing"] >= 0


def test_a_line_total_stops_at_its_bound_not_past_it(db_url, tmp_path) -> None:
    engine = setup(db_url)
    at = START + timedelta(days=2)
    # 4096 events of 2^50 are exactly 2^62 = MAX_TOTAL: all accepted, and exact.
    full = [(f"e{k}", at + timedelta(seconds=k), MAX_EVENT) for k in range(4096)]
    past = [("one-more", at + timedelta(hours=2), 1), ("after", at + timedelta(hours=3), 5)]
    summary, rejects = ingest(engine, tmp_path, [*full, *past])
    assert (summary.accepted, summary.rejected) == (4096, 2)
    assert [r.row for r in rejects] == [4097, 4098]
    assert all("past 2^62" in r.reason for r in rejects)
    statement = ledger_ops.statement(UnitOfWork(engine), "a", at).as_dict()["units"]["data"]
    assert statement["used"] == MAX_TOTAL
    assert statement["overage"] == MAX_TOTAL - 10 * GB
    # A later file, and the single-event path, see the stored total and refuse too.
    summary, rejects = ingest(engine, tmp_path, [("later", at + timedelta(hours=4), 1)],
                              "more.csv")
    assert (summary.accepted, summary.rejected) == (0, 1)
    with pytest.raises(ServiceError, match=r"past 2\^62"):
        ledger_ops.record_usage(UnitOfWork(engine), "a", 1, at + timedelta(hours=5),
                                at + timedelta(hours=5), "single")
    # The next cycle starts from zero.
    march = START + timedelta(days=31)
    ledger_ops.record_usage(UnitOfWork(engine), "a", MAX_EVENT, march, march, "next-cycle")
    assert ledger_ops.statement(UnitOfWork(engine), "a",
                                march).as_dict()["units"]["data"]["used"] == MAX_EVENT


def test_single_events_past_two_to_the_fifty_are_refused(db_url) -> None:
    engine = setup(db_url)
    at = START + timedelta(days=3)
    for amount in (2**63 - 1, 10**18 - 1, MAX_EVENT + 1):
        with pytest.raises(ServiceError, match=r"more than 2\^50"):
            ledger_ops.record_usage(UnitOfWork(engine), "a", amount, at, at, f"big-{amount}")
        with pytest.raises(ServiceError, match=r"more than 2\^50"):
            ledger_ops.top_up(UnitOfWork(engine), "a", amount, at, 30, f"topup-{amount}")
    ledger_ops.record_usage(UnitOfWork(engine), "a", MAX_EVENT, at, at, "largest")
    assert ledger_ops.statement(UnitOfWork(engine), "a",
                                at).as_dict()["units"]["data"]["used"] == MAX_EVENT
