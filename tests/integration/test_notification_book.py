"""The single-event path decides notifications from the book in memory: same rows as the store.

`ledger_ops.submit` and its reads call `notices.emit_from_book` with the
book they just saved. These tests put a spy there that also computes
`notification_rows` (the set-based queries `emit_notifications` runs for
batches and ingest) in the same transaction, on the state just written, and
require the two lists of outbox rows to be equal, for random sequences of
usage (in order and late), top-ups, plan changes, member limits, gifts, alert
thresholds picked (and reset to the defaults) and reads that cross cycle boundaries
and pack expiries, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from carryover.runtime import Carryover
from carryover.services.errors import ServiceError
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import alert_thresholds, notices
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
SINGLE = ["travel-5gb-30d", "tmobile-data-stash-10gb", "verizon-carryover-8gb",
          "china-mobile-jiezhuan-20gb", "tmobile-go5g"]
POOLS = ["att-mobile-share-15gb", "verizon-carryover-8gb"]

amounts = st.one_of(st.integers(0, 2000), st.integers(1, 12).map(lambda n: n * GB // 2))
hours = st.integers(0, 240)
who = st.integers(0, 2)
steps = st.one_of(
    st.tuples(st.just("usage"), who, amounts, hours, st.integers(0, 40)),
    st.tuples(st.just("topup"), who, amounts, hours, st.sampled_from([None, 2, 30])),
    st.tuples(st.just("plan"), who, st.sampled_from(SINGLE + POOLS), hours,
              st.sampled_from(["now", "next_cycle"])),
    st.tuples(st.just("limit"), who, st.one_of(st.none(), st.integers(0, 8).map(
        lambda n: n * GB)), hours, st.just(None)),
    st.tuples(st.just("gift"), who, amounts, hours, who),
    st.tuples(st.just("read"), who, st.just(0), hours, st.just(None)),
    st.tuples(st.just("thresholds"), who, st.one_of(st.none(), st.lists(
        st.integers(1, 100), min_size=1, max_size=5)), hours, st.just(None)),
)
calendars = st.sampled_from([("UTC", 1), ("America/New_York", 5), ("Asia/Kolkata", 31)])
worlds = st.one_of(
    st.tuples(st.just("single"), st.sampled_from(SINGLE), calendars),
    st.tuples(st.just("family"), st.sampled_from(POOLS), calendars),
)


def _key(row: dict) -> tuple:
    return (row["line"], row["kind"])


class Spy:
    """Stands in for emit_from_book: records both computations, then inserts the book's."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0

    def __call__(self, uow, account, book, at, known=None, thresholds=None) -> int:
        from_book = notices.book_rows(uow, account, book, at, known, thresholds)
        stored = notices.notification_rows(uow, [account.id], at)
        assert sorted(from_book, key=_key) == sorted(stored, key=_key)
        self.calls += 1
        self.rows += len(from_book)
        uow.outbox.offer(from_book)
        return len(from_book)


def run_world(engine, n: int, world: tuple, script: list[tuple], spy: Spy) -> None:
    kind, plan, (zone, day) = world
    name = f"acct{n}"
    lines = [f"x{n}l{i}" for i in range(3)]
    if kind == "single":
        provisioning.create_account(UnitOfWork(engine), name, day, zone, JAN)
        for i, line in enumerate(lines):
            provisioning.create_line(UnitOfWork(engine), name, f"+49151{n:05d}{i}", JAN,
                                     plan if i < 2 else SINGLE[(n + i) % len(SINGLE)],
                                     line_id=line)
    else:
        provisioning.create_account(UnitOfWork(engine), name, day, zone, JAN, plan)
        for i, line in enumerate(lines):
            # Two plan-less members and one member on a plan of its own.
            provisioning.create_line(UnitOfWork(engine), name, f"+49151{n:05d}{i}", JAN,
                                     None if i < 2 else "tmobile-data-stash-10gb",
                                     line_id=line)
    now = JAN
    for s, (op, i, amount, advance, extra) in enumerate(script):
        now += timedelta(hours=advance)
        line = lines[i]
        try:
            if op == "usage":
                at = now - timedelta(hours=extra)  # up to 40 h late: replays, grace
                ledger_ops.record_usage(UnitOfWork(engine), line, amount, max(at, JAN), now,
                                        f"e{n}-{s}")
            elif op == "topup":
                ledger_ops.top_up(UnitOfWork(engine), line, amount, now, extra, f"t{n}-{s}")
            elif op == "plan":
                ledger_ops.change_plan(UnitOfWork(engine), line, amount, extra, now, f"p{n}-{s}")
            elif op == "limit":
                ledger_ops.set_limit(UnitOfWork(engine), line, amount, now, f"l{n}-{s}")
            elif op == "gift":
                ledger_ops.gift(UnitOfWork(engine), line, lines[extra], amount, now, f"g{n}-{s}")
            elif op == "thresholds":
                alert_thresholds.set_thresholds(UnitOfWork(engine), line, amount)
            else:
                ledger_ops.balance(UnitOfWork(engine), line, now)
        except ServiceError:
            pass  # refused inputs write nothing; the next step goes on


@pytest.mark.parametrize("examples", [60])
def test_book_rows_equal_stored_rows(db_url, examples):
    engine = Carryover(get_settings(database_url=db_url)).open()
    counter = itertools.count()
    spy = Spy()

    @settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds, script=st.lists(steps, min_size=2, max_size=16))
    def check(world, script):
        run_world(engine, next(counter), world, script, spy)

    with mock.patch.object(ledger_ops, "emit_from_book", spy):
        check()
    # The spy saw the writes, and the scripts reached notices at all.
    assert spy.calls > examples and spy.rows > 0


def test_scripted_world_reaches_every_data_kind(db_url):
    """A fixed script through thresholds, throttling, rollover and a member limit."""
    engine = Carryover(get_settings(database_url=db_url)).open()
    spy = Spy()
    script = [("usage", 0, 6 * GB, 24, 0), ("usage", 1, 9 * GB, 1, 0),
              ("limit", 1, GB, 1, None), ("usage", 1, 2 * GB, 1, 0),
              ("usage", 0, 1, 24 * 29, 0), ("read", 0, 0, 24 * 20, None),
              ("usage", 0, 8 * GB, 1, 30), ("topup", 0, GB, 1, 30), ("read", 1, 0, 24, None)]
    with mock.patch.object(ledger_ops, "emit_from_book", spy):
        run_world(engine, 0, ("family", "verizon-carryover-8gb", ("UTC", 1)), script, spy)
        run_world(engine, 1, ("single", "tmobile-data-stash-10gb", ("UTC", 1)), script, spy)
    assert spy.calls >= 2 * len(script) - 2
    with engine.connect() as conn:
        kinds = {r.kind for r in conn.execute(select(outbox.c.kind))}
    assert {"usage_50", "usage_80", "usage_100", "throttled", "member_limit_reached",
            "rollover_credited"} <= kinds
