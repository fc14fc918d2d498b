"""The charging queue answers Nchf requests in batches on its own thread (SQLite, PostgreSQL).

Requests come from many threads at once, as from the API's request handlers.
Whether two requests share a transaction depends on timing, so where a test
needs batching to happen it holds the queue's thread inside its first
transaction (a gate in the unit-of-work factory, opened by the test, no sleeps)
while the other requests are submitted: they must then share the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    SessionNotFound,
    StaleRequest,
    UnitRequest,
    UnknownSubscriber,
    UsedUnits,
)
from carryover.services.charging.queue import ChargingQueue
from carryover.services.errors import ServiceError
from carryover.services.ledger import provisioning
from carryover.settings import Settings
from carryover.store.charging_tables import charging_sessions, quota_holds
from carryover.store.tables import usage_events
from carryover.store.uow import UnitOfWork
from tests.charging_support import open_session, release_session

MB = 1024**2
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PLANS = {
    "cq-big": {"id": "cq-big", "name": "1 GB", "kind": "metered",
               "allowance": {"data": "1GB"}, "overage": {"action": "block"}},
    "cq-pool-4mb": {"id": "cq-pool-4mb", "name": "Family 4 MB, blocked after",
                    "kind": "metered", "allowance": {"data": "4MB"},
                    "overage": {"action": "block"}},
}
POLICY = ChargingPolicy.from_settings(Settings(
    nchf_max_grant=MB, nchf_threshold_percent=20, nchf_validity_seconds=3600,
    nchf_hold_margin_seconds=60))
LINES = [f"q{i}" for i in range(8)]  # one account each, 1 GB: every grant is the full 1 MB
MEMBERS = [f"m{i}" for i in range(6)]  # one family pool of 4 MB
WAIT = 60  # seconds: only a hung queue ever waits this long


@pytest.fixture
def world(engine: Engine) -> Engine:
    with UnitOfWork(engine) as uow:
        for plan_id, body in PLANS.items():
            uow.plans.upsert(plan_id, body, "file", OPENED)
        uow.commit()
    for i, line in enumerate(LINES):
        provisioning.create_account(UnitOfWork(engine), f"acct-{line}", 1, "UTC", OPENED)
        provisioning.create_line(UnitOfWork(engine), f"acct-{line}", f"+4915200000{i:02d}", OPENED,
                                 "cq-big", line_id=line)
    provisioning.create_account(UnitOfWork(engine), "family", 1, "UTC", OPENED, "cq-pool-4mb")
    for i, line in enumerate(MEMBERS):
        provisioning.create_line(UnitOfWork(engine), "family", f"+4915300000{i:02d}", OPENED,
                                 line_id=line)
    return engine


class Gate:
    """A unit-of-work factory whose first call waits until the test opens the gate:
    the queue's thread is then inside its first batch, and what is submitted
    meanwhile waits in the queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0

    def __call__(self) -> UnitOfWork:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.opened.wait(WAIT), "the test never opened the gate"
        return UnitOfWork(self.engine)


@pytest.fixture
def make_queue() -> Iterator[Callable[..., ChargingQueue]]:
    made: list[ChargingQueue] = []

    def make(factory: Callable[[], UnitOfWork], max_batch: int = 64) -> ChargingQueue:
        queue = ChargingQueue(factory, POLICY, max_batch)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()


def ask(at: datetime, seq: int, requested: int | None = MB,
        used: tuple[UsedUnits, ...] = (), subscriber: str | None = None) -> ChargingRequest:
    return ChargingRequest(at, seq, (UnitRequest(1, requested is not None, requested, used),),
                           subscriber)


def submit_from_threads(queue: ChargingQueue, ops: list[ChargingOp],
                        threads: int = 8) -> list[Future]:
    """Submit `ops` from `threads` threads that start together; futures in op order."""
    barrier = threading.Barrier(threads)
    chunks = [list(range(i, len(ops), threads)) for i in range(threads)]
    futures: list[Future | None] = [None] * len(ops)

    def work(indices: list[int]) -> None:
        barrier.wait(WAIT)
        for i in indices:
            futures[i] = queue.submit(ops[i])

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(work, chunk) for chunk in chunks]:
            done.result(WAIT)
    assert all(f is not None for f in futures)
    return futures  # type: ignore[return-value]


def results(futures: list[Future]) -> list:
    return [f.exception(WAIT) or f.result(WAIT) for f in futures]


def grant_of(answer: ChargingAnswer) -> int:
    ((rating_group, grant),) = answer.grants
    assert rating_group == 1
    return grant.amount


def stored_usage(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {line: int(total) for line, total in conn.execute(
            select(usage_events.c.line, func.sum(usage_events.c.amount))
            .group_by(usage_events.c.line))}


def held(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {ref: int(amount) for ref, amount in conn.execute(
            select(quota_holds.c.ref, quota_holds.c.amount))}


def test_many_threads_are_all_answered(world: Engine, make_queue) -> None:
    queue = make_queue(lambda: UnitOfWork(world))
    lines = [LINES[i % len(LINES)] for i in range(40)]  # five sessions per account

    created = results(submit_from_threads(
        queue, [ChargingOp("create", ask(T0, 0, subscriber=line)) for line in lines]))
    assert all(isinstance(a, ChargingAnswer) for a in created), created
    assert [a.line for a in created] == lines
    assert all(grant_of(a) == MB and a.sequence == 0 for a in created)
    refs = [a.ref for a in created]
    assert len(set(refs)) == 40

    t1 = T0 + timedelta(minutes=5)
    used = [(i + 1) * 10_000 for i in range(40)]
    updates = [ChargingOp("update", ask(t1, 1, MB // 2, (UsedUnits(1, used[i], t1),)), ref)
               for i, ref in enumerate(refs)]
    # Each update twice: the second is a retransmission (same invocationSequenceNumber).
    answers = results(submit_from_threads(queue, updates + updates))
    assert all(isinstance(a, ChargingAnswer) for a in answers), answers
    for i, answer in enumerate(answers):
        assert (answer.ref, answer.sequence, grant_of(answer)) == (refs[i % 40], 1, MB // 2)
    # Whichever of the two copies was answered first, exactly one per session was fresh.
    for i in range(40):
        assert {answers[i].replayed, answers[i + 40].replayed} == {False, True}
        assert answers[i].grants == answers[i + 40].grants
    expected: dict[str, int] = {}
    for line, amount in zip(lines, used, strict=True):
        expected[line] = expected.get(line, 0) + amount
    assert stored_usage(world) == expected  # retransmitted reports counted once
    assert held(world) == dict.fromkeys(refs, MB // 2)

    t2 = t1 + timedelta(minutes=5)
    releases = [ChargingOp("release", ask(t2, 2, None, (UsedUnits(2, 1000, t2),)), ref)
                for ref in refs]
    # Each release twice: releasing again changes nothing.
    assert results(submit_from_threads(queue, releases + releases)) == [None] * 80
    assert held(world) == {}
    assert stored_usage(world) == {line: total + 5 * 1000 for line, total in expected.items()}
    with world.connect() as conn:
        rows = conn.execute(select(charging_sessions.c.sequence,
                                   charging_sessions.c.released_at)).all()
    assert sorted(rows) == [(2, t2)] * 40
    assert queue.answered == 40 + 80 + 80
    assert 1 <= queue.batches <= queue.answered


def test_updates_submitted_together_share_one_transaction(world: Engine, make_queue) -> None:
    answers = [open_session(world, POLICY, ask(T0, 0, subscriber=LINES[i % len(LINES)]))
               for i in range(40)]
    gate = Gate(world)
    queue = make_queue(gate, max_batch=64)
    t1 = T0 + timedelta(minutes=1)
    ops = [ChargingOp("update", ask(t1, 1, MB // 4, (UsedUnits(1, 5000, None),)), a.ref)
           for a in answers]
    first = queue.submit(ops[0])
    assert gate.entered.wait(WAIT)  # the queue's thread is inside a batch of one
    rest = submit_from_threads(queue, ops[1:], threads=4)
    assert not any(f.done() for f in [first, *rest])
    gate.opened.set()
    got = results([first, *rest])
    assert all(isinstance(a, ChargingAnswer) and grant_of(a) == MB // 4 for a in got), got
    assert [a.ref for a in got] == [a.ref for a in answers]
    # The 39 that arrived during the first transaction were answered in the second.
    assert (queue.batches, queue.answered) == (2, 40)
    assert sum(stored_usage(world).values()) == 40 * 5000
    assert held(world) == {a.ref: MB // 4 for a in answers}


def test_close_answers_what_was_queued(world: Engine, make_queue) -> None:
    answers = [open_session(world, POLICY, ask(T0, 0, subscriber=line)) for line in LINES]
    gate = Gate(world)
    queue = make_queue(gate, max_batch=3)  # what is queued takes several batches
    t1 = T0 + timedelta(minutes=1)
    futures = [queue.submit(ChargingOp("update", ask(t1, 1, MB // 8), answers[0].ref))]
    assert gate.entered.wait(WAIT)
    futures += [queue.submit(ChargingOp("update", ask(t1, 1, MB // 8), a.ref))
                for a in answers[1:]]
    futures += [queue.submit(ChargingOp("release", ask(t1, 2, None), a.ref))
                for a in answers]
    assert not any(f.done() for f in futures)
    gate.opened.set()
    queue.close()
    # Everything queued before close() was answered before it returned.
    assert all(f.done() for f in futures)
    got = [f.result(0) for f in futures]
    assert all(isinstance(a, ChargingAnswer) and grant_of(a) == MB // 8 for a in got[:8])
    assert got[8:] == [None] * 8
    assert queue.answered == 16 and queue.batches >= 16 // 3
    assert held(world) == {}
    # A closed queue starts again on the next request.
    again = queue.submit(ChargingOp("create", ask(t1, 0, subscriber=LINES[0])))
    assert grant_of(again.result(WAIT)) == MB
    queue.close()
    assert queue.answered == 17


def test_an_error_reaches_only_its_own_future(world: Engine, make_queue) -> None:
    good = [open_session(world, POLICY, ask(T0, 0, subscriber=line)) for line in LINES[:4]]
    done = open_session(world, POLICY, ask(T0, 0, subscriber=LINES[4]))
    release_session(world, POLICY, done.ref, ask(T0, 1, None))
    gate = Gate(world)
    queue = make_queue(gate)
    t1 = T0 + timedelta(minutes=1)
    late = t1 + timedelta(seconds=30)  # triggered after the request's instant: refused
    ops = [
        ChargingOp("create", ask(t1, 0, subscriber=LINES[5])),               # 0 (gated alone)
        ChargingOp("update", ask(t1, 1, MB, (UsedUnits(1, 7000, None),)), good[0].ref),
        ChargingOp("update", ask(t1, 1, MB), "0" * 32),                      # 2 unknown ref
        ChargingOp("update", ask(t1, 1, MB, (UsedUnits(1, 3000, None),)), good[1].ref),
        ChargingOp("create", ask(t1, 0, subscriber="+499999999999")),        # 4 nobody
        ChargingOp("update", ask(t1, 1, MB, (UsedUnits(1, 100, None),         # 5 refused
                                             UsedUnits(2, 200, late))), good[2].ref),
        ChargingOp("update", ask(t1, 1, MB, (UsedUnits(1, 5000, None),)), good[3].ref),
        ChargingOp("update", ask(t1, 0, MB), good[3].ref),                   # 7 stale
        ChargingOp("update", ask(t1, 2, MB), done.ref),                      # 8 released
        ChargingOp("release", ask(t1, 2, None), done.ref),                   # 9 again: None
        *[ChargingOp("create", ask(t1, 0, subscriber=m)) for m in MEMBERS],  # 10.. the pool
    ]
    futures = [queue.submit(ops[0])]
    assert gate.entered.wait(WAIT)
    futures += submit_from_threads(queue, ops[1:], threads=1)  # in this order
    gate.opened.set()
    got = results(futures)
    errors = {i: type(r) for i, r in enumerate(got) if isinstance(r, Exception)}
    assert errors == {2: SessionNotFound, 4: UnknownSubscriber, 5: ServiceError,
                      7: StaleRequest, 8: SessionNotFound}, got
    assert "received_at is before at" in str(got[5])
    assert got[9] is None
    for i in (0, 1, 3, 6):
        assert isinstance(got[i], ChargingAnswer) and grant_of(got[i]) == MB
    # The refused request left nothing; the others' usage is stored.
    assert stored_usage(world) == {LINES[0]: 7000, LINES[1]: 3000, LINES[3]: 5000}
    holds = held(world)
    assert holds[good[2].ref] == MB  # still the grant of its create
    # Six members asked for 1 MB each of a 4 MB pool: never more than the pool is held.
    pool = [grant_of(a) for a in got[10:]]
    assert sum(pool) <= 4 * MB and sum(pool) == sum(holds[a.ref] for a in got[10:]
                                                   if a.ref in holds)
    assert max(pool) == MB
    assert (queue.batches, queue.answered) == (2, len(ops))


def test_a_waiter_that_gave_up_does_not_stop_the_lane(world: Engine, make_queue) -> None:
    # An HTTP request cancelled while queued (asyncio.wrap_future cancels the future):
    # its answer has nowhere to go, and every other request is still answered.
    answers = [open_session(world, POLICY, ask(T0, 0, subscriber=LINES[i])) for i in range(3)]
    gate = Gate(world)
    queue = make_queue(gate)
    t1 = T0 + timedelta(minutes=1)
    ops = [ChargingOp("update", ask(t1, 1, MB // 2), a.ref) for a in answers]
    first = queue.submit(ops[0])
    assert gate.entered.wait(WAIT)
    gave_up, waiting = queue.submit(ops[1]), queue.submit(ops[2])
    assert gave_up.cancel()
    gate.opened.set()
    assert grant_of(first.result(WAIT)) == MB // 2
    assert grant_of(waiting.result(WAIT)) == MB // 2
    later = queue.submit(ChargingOp("update", ask(t1 + timedelta(minutes=1), 2, MB // 4),
                                    answers[0].ref))
    assert grant_of(later.result(WAIT)) == MB // 4  # the lane is still alive
