"""Time bounds (issue 22 item 2 and item 9; docs/semantics.md, "Bounds").

Reproductions: a balance at 9999-12-01 never returned and held the database; a
balance at 2226-01-01 committed 200 years of cycles from a read; usage at
9999-12-31, received_at 9999 or a line starting in 9999 or 0001 did the same or
failed with a traceback; a statement at 0001-01-01 was a 5xx. Now writes are
accepted up to now plus the clock skew and from what they concern opened, reads
up to read_ahead_days ahead, each refusal naming the field and the window, and a
read past now commits nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.ledger.time_window import OutOfWindow
from carryover.settings import get_settings
from carryover.store.engine import make_engine
from carryover.store.tables import accounts, buckets, counters, ledger_entries
from carryover.store.uow import UnitOfWork

NOW = datetime.now(UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)


def setup(url: str):
    engine = Carryover(get_settings(database_url=url)).open()
    provisioning.create_account(UnitOfWork(engine), "acme", 1, "UTC", START)
    provisioning.create_line(UnitOfWork(engine), "acme", "+4915100000001", START,
                             "tmobile-data-stash-10gb", line_id="a")
    ledger_ops.record_usage(UnitOfWork(engine), "a", 1024, NOW - timedelta(days=1), NOW, "u1")
    return engine


def stored(engine) -> tuple:
    with engine.connect() as conn:
        return (tuple(conn.execute(select(func.count()).select_from(t)).scalar()
                      for t in (ledger_entries, buckets, counters)),
                tuple(conn.execute(select(accounts.c.until, accounts.c.version)).one()))


def test_a_read_past_now_commits_nothing(db_url) -> None:
    engine = setup(db_url)
    before = stored(engine)
    ahead = NOW + timedelta(days=800)
    view = ledger_ops.balance(UnitOfWork(engine), "a", ahead)
    statement = ledger_ops.statement(UnitOfWork(engine), "a", ahead).as_dict()
    ledger_ops.qos_at(UnitOfWork(engine), "a", ahead)
    assert stored(engine) == before
    # ...and computes the future all the same: 26 or so boundaries of rollover later,
    # the line holds the allowance and the stash (never more than 20 GB).
    assert view["available"]["data"] > 0
    assert statement["units"]["data"]["grant"] == 10 * 1024**3
    # A read at now still materializes the cycles up to now (the lazy boundary), and
    # the cursor it commits is not past now.
    ledger_ops.balance(UnitOfWork(engine), "a", NOW)
    until, version = stored(engine)[1]
    assert version > before[1][1] and until <= datetime.now(UTC)


@pytest.mark.parametrize("at", [datetime(2226, 1, 1, tzinfo=UTC),
                                datetime(9999, 12, 1, tzinfo=UTC)])
def test_a_read_far_ahead_is_refused_at_once(db_url, at) -> None:
    engine = setup(db_url)
    before = stored(engine)
    started = time.monotonic()
    with pytest.raises(OutOfWindow, match=r"^at: .* days ahead of now"):
        ledger_ops.balance(UnitOfWork(engine), "a", at)
    with pytest.raises(OutOfWindow, match=r"^at: "):
        ledger_ops.statement(UnitOfWork(engine), "a", at)
    assert time.monotonic() - started < 5
    assert stored(engine) == before


def test_writes_outside_the_window_are_refused_naming_the_field(db_url) -> None:
    engine = setup(db_url)
    before = stored(engine)
    far = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(OutOfWindow, match=r"^at: 9999-12-31.* in the future"):
        ledger_ops.record_usage(UnitOfWork(engine), "a", 1, far, far, "u-far")
    with pytest.raises(OutOfWindow, match=r"^received_at: 9999-01-01.* in the future"):
        ledger_ops.record_usage(UnitOfWork(engine), "a", 1, NOW, datetime(9999, 1, 1, tzinfo=UTC),
                                "u-rx")
    with pytest.raises(OutOfWindow, match=r"^at: .* in the future"):
        ledger_ops.top_up(UnitOfWork(engine), "a", 1, NOW + timedelta(hours=1), 3, "t-future")
    with pytest.raises(OutOfWindow, match=r"^at: .* before line 'a' started"):
        ledger_ops.top_up(UnitOfWork(engine), "a", 1, START - timedelta(days=1), 3, "t-past")
    with pytest.raises(OutOfWindow, match=r"^start: 9999"):
        provisioning.create_line(UnitOfWork(engine), "acme", "+4915100000002", datetime(9999, 1, 1,
                                 tzinfo=UTC), "tmobile-data-stash-10gb")
    with pytest.raises(OutOfWindow, match=r"^start: 0001-01-01.* before 1970"):
        provisioning.create_line(UnitOfWork(engine), "acme", "+4915100000003", datetime(1, 1, 1,
                                 tzinfo=UTC), "tmobile-data-stash-10gb")
    with pytest.raises(OutOfWindow, match=r"^at: 0001-01-01.* before line 'a' started"):
        ledger_ops.statement(UnitOfWork(engine), "a", datetime(1, 1, 1, tzinfo=UTC))
    assert stored(engine) == before
    # Within the skew is accepted: a network clock a little ahead.
    ledger_ops.record_usage(UnitOfWork(engine), "a", 1, NOW + timedelta(minutes=2),
                            NOW + timedelta(minutes=2), "u-skew")


@pytest.mark.postgres
def test_statement_timeout_ends_a_statement_that_holds_the_database(pg_database_url) -> None:
    engine = make_engine(pg_database_url, statement_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Exception, match="statement timeout"), engine.connect() as conn:
        conn.execute(text("SELECT pg_sleep(30)"))
    assert time.monotonic() - started < 10
    settings = get_settings(database_url=pg_database_url, statement_timeout_seconds=2)
    with Carryover(settings).open().connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "2s"
