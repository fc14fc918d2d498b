"""The ingest's notifier offers exactly the rows `emit_notifications` offers, on the same state.

A world with every kind in it (thresholds, throttled and blocked lines, credited and
expiring rollover, a family pool with a member limit, a line of another timezone)
is built through the single-event path; then, at several instants, the rows
`emit_notifications` offers to the outbox are compared with `chunk_notices.candidates`,
and the rows each writes to the outbox are compared as readers see them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import chunk_notices, notices
from carryover.settings import get_settings
from carryover.store.notice_reads import NoticeReads
from carryover.store.raw_cursor import Raw
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def world(url: str):
    engine = Carryover(get_settings(database_url=url)).open()
    provisioning.create_account(UnitOfWork(engine), "solo", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "solo", "+4915100000001", JAN,
                             "verizon-carryover-8gb", line_id="v")
    provisioning.create_line(UnitOfWork(engine), "solo", "+4915100000002", JAN,
                             "tmobile-data-stash-10gb", line_id="s")
    provisioning.create_account(UnitOfWork(engine), "berlin", 15, "Europe/Berlin", JAN)
    provisioning.create_line(UnitOfWork(engine), "berlin", "+4915100000003", JAN, "travel-5gb-30d",
                             line_id="p")
    provisioning.create_line(UnitOfWork(engine), "berlin", "+4915100000004", JAN, "tmobile-go5g",
                             line_id="u")
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", JAN, "att-mobile-share-15gb")
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000005", JAN, line_id="m1",
                             member=True)
    provisioning.create_line(UnitOfWork(engine), "fam", "+4915100000006", JAN,
                             "verizon-carryover-8gb", line_id="m2", member=True)
    ledger_ops.set_limit(UnitOfWork(engine), "m1", 2 * GB, JAN, "limit-m1")
    usage = [("v", 3 * GB, 19), ("s", 9 * GB, 3), ("s", 2 * GB, 4), ("p", 6 * GB, 5),
             ("u", 40 * GB, 6), ("m1", 3 * GB, 7), ("m2", 5 * GB, 8), ("v", GB, 41),
             ("v", GB, 54), ("s", 4 * GB, 50), ("m2", GB, 52), ("m1", 3 * GB, 55)]
    for k, (line, amount, day) in enumerate(usage):
        at = JAN + timedelta(days=day, hours=k)
        ledger_ops.record_usage(UnitOfWork(engine), line, amount, at, at, f"e{k}")
    return engine


def offered_by_emit(uow, ids, at, monkeypatch) -> list[dict]:
    seen: list[dict] = []
    monkeypatch.setattr(uow.outbox, "offer", seen.extend)
    notices.emit_notifications(uow, ids, at)
    monkeypatch.undo()
    return seen


def test_candidates_equal_emit_notifications(db_url, monkeypatch):
    engine = world(db_url)
    kinds: set[str] = set()
    for day in (5, 9, 20, 45, 53, 56, 61):
        at = JAN + timedelta(days=day)
        with UnitOfWork(engine) as uow:
            ids = [1, 2, 3]
            expected = offered_by_emit(uow, ids, at, monkeypatch)
            got = chunk_notices.candidates(NoticeReads(Raw(uow.conn)), ids, at, uow.plans.all())
        assert got == expected, day
        kinds.update(row["kind"] for row in expected)
    # Every kind the state can raise is among them: the comparison is not vacuous.
    assert {"usage_50", "usage_80", "usage_100", "throttled", "blocked",
            "member_limit_reached", "rollover_credited", "rollover_expiring"} <= kinds


def test_a_run_offers_each_key_once(db_url):
    engine = world(db_url)
    notifier = chunk_notices.ChunkNotifier()
    at = MAR - timedelta(days=3)
    with UnitOfWork(engine) as uow:
        reads = NoticeReads(Raw(uow.conn))
        first = notifier.emit(uow.outbox, reads, [1, 2, 3], at, uow.plans.all())
        again = notifier.emit(uow.outbox, reads, [1, 2, 3], at, uow.plans.all())
        uow.commit()
    assert first > 0
    assert again == 0


def stored_outbox(conn) -> list[tuple]:
    """The outbox as readers see it (typed by SQLAlchemy), without id and write time."""
    rows = conn.execute(select(outbox).order_by(outbox.c.line, outbox.c.cycle_start,
                                                outbox.c.kind)).all()
    for row in rows:
        assert row.written_at is not None and row.written_at.tzinfo is not None
    return [(r.account_id, r.line, r.cycle_start, r.kind, r.at, r.payload) for r in rows]


@pytest.mark.parametrize("batch", [None, 1])
def test_stored_rows_equal_emit_notifications(db_url, monkeypatch, batch):
    """What the notifier stores reads back as what `emit_notifications` stores, whether
    it reads its accounts all at once or one at a time."""
    if batch is not None:
        monkeypatch.setattr(chunk_notices, "ACCOUNT_BATCH", batch)
    engine = world(db_url)
    compared = 0
    for day in (5, 20, 53, 56):
        at = JAN + timedelta(days=day, hours=7, microseconds=123456)
        stored = []
        for bulk in (False, True):
            with UnitOfWork(engine) as uow:  # rolled back: each starts from the same outbox
                uow.conn.execute(delete(outbox))
                if bulk:
                    chunk_notices.ChunkNotifier().emit(
                        uow.outbox, NoticeReads(Raw(uow.conn)), [1, 2, 3], at, uow.plans.all())
                else:
                    notices.emit_notifications(uow, [1, 2, 3], at)
                stored.append(stored_outbox(uow.conn))
        assert stored[0] == stored[1], day
        compared += len(stored[0])
    assert compared > 10


def test_insert_stores_what_sqlalchemys_typed_insert_would(db_url):
    """The outbox's `offer` makes the stored text itself on SQLite (instants, JSON): it
    must read back as rows written through SQLAlchemy's own Instant and JSON types."""
    engine = world(db_url)
    at = JAN + timedelta(days=53, hours=7, microseconds=123456)
    stored = []
    for typed in (False, True):
        with UnitOfWork(engine) as uow:  # rolled back: each starts from the same outbox
            uow.conn.execute(delete(outbox))
            rows = notices.notification_rows(uow, [1, 2, 3], at)
            if typed:
                uow.conn.execute(insert(outbox), [{**r, "written_at": at} for r in rows])
            else:
                uow.outbox.offer(rows)
            stored.append(stored_outbox(uow.conn))
    assert len(stored[0]) > 5
    assert stored[0] == stored[1]


def test_a_key_already_in_the_outbox_is_left_as_it_is(db_url):
    engine = world(db_url)
    at = MAR - timedelta(days=3)
    with UnitOfWork(engine) as uow:
        uow.conn.execute(delete(outbox))
        notices.emit_notifications(uow, [1], at)
        before = stored_outbox(uow.conn)
        ids = {r.id for r in uow.conn.execute(select(outbox.c.id))}
        # A later instant: same keys, other payloads; and account 2's keys are new.
        offered = chunk_notices.ChunkNotifier().emit(
            uow.outbox, NoticeReads(Raw(uow.conn)), [1, 2], at + timedelta(days=1), uow.plans.all())
        after = stored_outbox(uow.conn)
        kept = [r for r in after if r[0] == 1]
        added = uow.conn.execute(select(func.count()).select_from(outbox)
                                 .where(outbox.c.id.not_in(ids))).scalar_one()
    assert before and kept == before
    assert added == len(after) - len(before) > 0
    assert offered > added  # account 1's rows were offered again, and dropped
