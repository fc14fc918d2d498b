"""Each account's notices are decided at its own instant, not at the latest of a chunk.

The probe this reproduces: an ingest chunk (or a usage batch) decided every touched
account's notices at the latest `at` of the whole chunk, so a line with no overage whose
events were all in January got `throttled` for January when another account's events
reached February (599 of 1,037 lines in a 300k-row run); out-of-order files added more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from carryover.runtime import Carryover
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
STASH = "tmobile-data-stash-10gb"  # throttled at 128 kbps after all data
LINES = {"early": "+4915100000001", "late": "+4915100000002", "third": "+4915100000003"}


def world(db_url: str):
    engine = Carryover(get_settings(database_url=db_url)).open()
    for n, (line, msisdn) in enumerate(LINES.items()):
        provisioning.create_account(UnitOfWork(engine), f"acct-{line}", 1 + 10 * n, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), f"acct-{line}", msisdn, JAN, STASH,
                                 line_id=line)
    return engine


def notices(engine) -> set[tuple]:
    """The outbox as (line, cycle, kind, the payload's numbers and instant)."""
    with UnitOfWork(engine) as uow:
        rows = uow.conn.execute(select(outbox.c.line, outbox.c.cycle_start, outbox.c.kind,
                                       outbox.c.payload)).all()
    return {(r.line, r.cycle_start, r.kind, tuple(sorted(
        (k, str(v)) for k, v in r.payload.items()))) for r in rows}


def kinds(engine) -> set[tuple[str, str, str]]:
    return {(line, cycle[:10], kind) for line, cycle, kind, _ in notices(engine)}


def test_a_batch_decides_each_accounts_notices_at_its_own_instant(db_url):
    engine = world(db_url)
    jan = JAN + timedelta(days=10)
    feb = JAN + timedelta(days=45)
    rows = [UsageRow("e1", "early", jan, GB, jan),  # 1 GB of 10 GB: nothing to notify
            UsageRow("e2", "late", feb, 6 * GB, feb)]  # 6 of 10 GB in February: 50 %
    assert record_batch(UnitOfWork(engine), rows).accepted == 2
    found = kinds(engine)
    assert {k for k in found if k[0] == "early"} == set()
    # Cycle day 11: February's cycle starts on the 11th; 6 GB of its 10 GB allowance.
    assert ("late", "2026-02-11", "usage_50") in found
    assert ("late", "2026-02-11", "throttled") not in found


def test_an_out_of_order_event_is_decided_at_the_accounts_own_instant(db_url):
    engine = world(db_url)
    feb = JAN + timedelta(days=32)
    # the book is in February
    ledger_ops.record_usage(UnitOfWork(engine), "early", GB, feb, feb, "now")
    # A January event within the grace window: rated in January, the book stays in February.
    jan = JAN + timedelta(days=30)
    assert record_batch(UnitOfWork(engine), [UsageRow("old", "early", jan, GB, feb)]).accepted == 1
    ledger_ops.record_usage(UnitOfWork(engine), "early", GB, jan - timedelta(days=1),
                            feb + timedelta(hours=1), "older")
    # January's unused allowance went to the stash on February 1: credited, and data
    # is left, so nothing is throttled.
    assert kinds(engine) == {("early", "2026-02-01", "rollover_credited")}


EVENTS = st.lists(st.tuples(st.sampled_from(sorted(LINES)), st.integers(0, 75),
                            st.integers(1, 12)), min_size=1, max_size=12)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS)
def test_a_chunks_notices_are_each_accounts_notices_alone(tmp_path_factory, events):
    """One batch of every account's events offers what one batch per account offers."""
    folder: Path = tmp_path_factory.mktemp("notices")
    rows = [UsageRow(f"e{n}", line, JAN + timedelta(days=day, hours=n), gb * GB // 2,
                     JAN + timedelta(days=day, hours=n))
            for n, (line, day, gb) in enumerate(events)]
    together = world(f"sqlite:///{folder / 'together.db'}")
    record_batch(UnitOfWork(together), rows)
    alone = world(f"sqlite:///{folder / 'alone.db'}")
    for line in sorted(LINES):
        mine = [r for r in rows if r.line == line]
        if mine:
            record_batch(UnitOfWork(alone), mine)
    assert notices(together) == notices(alone)
    together.dispose()
    alone.dispose()
