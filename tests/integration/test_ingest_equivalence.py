"""Bulk ingestion gives exactly the balances of the single-event path
(docs/semantics.md, "A line's state is a fold").

Random events for single lines and a family pool, in a random arrival order, some
late inside and some past the grace window, are written as a CSV file, read back
in random chunk sizes and ingested through `ingest_chunks` (one transaction per chunk,
or per run of chunks holding a random number of rows), and recorded one by one
through `ledger_ops` on another database. Every line's balance object (buckets, ids,
counters, QoS) must be equal, and ingesting the same chunks again must change nothing.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carryover.adapters.cdr_files import read_usage
from carryover.runtime import Carryover
from carryover.services.ingest.chunks import ingest_chunks
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.engine import dispose_engines
from carryover.store.uow import UnitOfWork

MB = 1024**2
START = datetime(2026, 1, 1, tzinfo=UTC)
LINES = [  # (account, line, plan, member)
    ("solo-a", "a", "tmobile-data-stash-10gb", False),
    ("solo-b", "b", "china-mobile-jiezhuan-20gb", False),
    ("solo-b", "b2", "tmobile-go5g", False),
    ("fam", "f1", None, True),
    ("fam", "f2", "verizon-carryover-8gb", True),
]


def setup(url: str):
    engine = Carryover(get_settings(database_url=url)).open()
    provisioning.create_account(UnitOfWork(engine), "solo-a", 1, "UTC", START)
    provisioning.create_account(UnitOfWork(engine), "solo-b", 15, "Europe/Berlin", START)
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", START, "att-mobile-share-15gb")
    for n, (account, line, plan, member) in enumerate(LINES):
        provisioning.create_line(UnitOfWork(engine), account, f"+4915100000{n:03d}", START, plan,
                                 line_id=line, member=member)
    ledger_ops.set_limit(UnitOfWork(engine), "f1", 3000 * MB, START, "limit-f1")
    return engine


@st.composite
def histories(draw):
    events = []
    for k in range(draw(st.integers(1, 40))):
        line = draw(st.sampled_from([name for _, name, _, _ in LINES]))
        at = START + timedelta(minutes=draw(st.integers(0, 70 * 24 * 60)))
        delay = draw(st.sampled_from([0, 5, 60 * 20, 60 * 47, 60 * 24 * 4]))  # minutes
        amount = draw(st.integers(0, 6000)) * MB
        events.append((f"ev{k}", line, at, at + timedelta(minutes=delay), amount,
                       draw(st.sampled_from([None, "hotspot"]))))
    arrival = sorted(events, key=lambda e: (e[3], e[0]))
    return arrival, draw(st.integers(1, 12)), draw(st.one_of(st.none(), st.integers(1, 45)))


def chunks(folder, events, size):
    """The events written as a CSV file (in arrival order) and read back in chunks."""
    path = folder / f"cdr-{size}.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "rating_group", "received_at"])
        for event_id, line, at, received, amount, group in events:
            out.writerow([event_id, line, at.isoformat(), amount, group or "",
                          received.isoformat()])
    for chunk, rejects in read_usage(path, chunk_rows=size, now_us=0):
        assert not rejects
        yield str(path), chunk, rejects


def balances(engine, at):
    return {name: ledger_ops.balance(UnitOfWork(engine), name, at) for _, name, _, _ in LINES}


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories())
def test_ingest_equals_single_events(tmp_path_factory, history):
    arrival, size, transaction = history
    folder = tmp_path_factory.mktemp("ingest")
    dispose_engines()
    bulk = setup(f"sqlite:///{folder / 'bulk.db'}")
    single = setup(f"sqlite:///{folder / 'single.db'}")
    summary = ingest_chunks(UnitOfWork(bulk), chunks(folder, arrival, size), "test",
                            transaction_rows=transaction)
    assert summary.accepted == len(arrival)
    for event_id, line, at, received, amount, group in arrival:
        ledger_ops.record_usage(UnitOfWork(single), line, amount, at, received, event_id,
                                rating_group=group)
    end = START + timedelta(days=75)
    expected = balances(single, end)
    assert balances(bulk, end) == expected
    again = ingest_chunks(UnitOfWork(bulk), chunks(folder, arrival, size), "again",
                          transaction_rows=transaction)
    assert (again.accepted, again.duplicates) == (0, len(arrival))
    assert balances(bulk, end) == expected
