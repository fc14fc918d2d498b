"""Sequence numbers as SMFs send them (docs/nchf.md, "Sequence numbers"), on the fake
unit of work: every byte counted once whichever way the SMF numbers.

Three SMFs: one that counts per session (TS 32.291), one that numbers containers
afresh in every report (`nchf_local_sequence = "report"`), and one that numbers
nothing, as free5GC's SMF: invocationSequenceNumber 0 and localSequenceNumber 0
on every request and container, several containers of one rating group per report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from carryover.domain.sessions import ChargingSession
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingRequest,
    UnitRequest,
    UsedUnits,
)
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork
from tests.unit.test_charging_service import MB, POLICY, T0, small_db, used

KB = 1024
PER_REPORT = replace(POLICY, per_report=True)


@pytest.fixture
def db() -> FakeDatabase:
    return small_db()


def report(at: datetime, sequence: int, containers: list[tuple[int, int]],
           again: bool = False) -> ChargingRequest:
    """A report on rating group 1 asking 1 MB more: (localSequenceNumber, bytes) each."""
    return ChargingRequest(at, sequence, (UnitRequest(1, True, MB, tuple(
        UsedUnits(n, amount, at) for n, amount in containers)),), retransmission=again)


def run(db: FakeDatabase, *ops: ChargingOp, policy=POLICY) -> list:
    return charge(FakeUnitOfWork(db), policy, list(ops))


def opened(db: FakeDatabase, policy=POLICY) -> str:
    (answer,) = run(db, ChargingOp("create", ChargingRequest(
        T0, 0, (UnitRequest(1, True, MB),), "s1")), policy=policy)
    return answer.ref


def test_an_smf_that_numbers_nothing_has_every_report_counted(db: FakeDatabase) -> None:
    ref = opened(db)
    sent = 0
    for k in range(1, 6):  # five reports, each number 0, two containers numbered 0
        at = T0 + timedelta(seconds=10 * k)
        (answer,) = run(db, ChargingOp("update", report(at, 0, [(0, k * KB), (0, 7 * KB)]),
                                       ref))
        assert isinstance(answer, ChargingAnswer) and not answer.replayed
        sent += k * KB + 7 * KB
    assert used(db, "s1") == sent
    assert len(db.state.usage) == 10
    # The last report sent again: the same answer, nothing counted twice.
    at = T0 + timedelta(seconds=50)
    (replay,) = run(db, ChargingOp("update", report(at, 0, [(0, 5 * KB), (0, 7 * KB)]), ref))
    assert replay.replayed and used(db, "s1") == sent
    # An earlier report arriving late says what it said: its containers are stored.
    at = T0 + timedelta(seconds=20)
    run(db, ChargingOp("update", report(at, 0, [(0, 2 * KB), (0, 7 * KB)]), ref))
    assert used(db, "s1") == sent
    # Its release, numbered 0 too, reports the last containers: counted.
    end = T0 + timedelta(minutes=2)
    assert run(db, ChargingOp("release", report(end, 0, [(0, 3 * KB)]), ref)) == [None]
    assert used(db, "s1") == sent + 3 * KB


def test_a_retransmission_indicator_replays_even_if_the_instant_moved(
        db: FakeDatabase) -> None:
    ref = opened(db)
    at = T0 + timedelta(seconds=10)
    (first,) = run(db, ChargingOp("update", report(at, 1, [(1, 4 * KB)]), ref))
    later = at + timedelta(seconds=3)
    (again,) = run(db, ChargingOp("update", report(later, 1, [(1, 4 * KB)], again=True), ref))
    assert again.replayed and again.grants == first.grants
    assert used(db, "s1") == 4 * KB


def test_an_smf_numbering_per_report_has_every_report_counted(db: FakeDatabase) -> None:
    ref = opened(db, PER_REPORT)
    for k in range(1, 4):  # numbers 1, 2 in every report
        at = T0 + timedelta(seconds=10 * k)
        run(db, ChargingOp("update", report(at, k, [(1, KB), (2, 2 * KB)]), ref),
            policy=PER_REPORT)
    assert used(db, "s1") == 3 * 3 * KB
    # The same request again (the same number and containers): once.
    at = T0 + timedelta(seconds=30)
    (replay,) = run(db, ChargingOp("update", report(at, 3, [(1, KB), (2, 2 * KB)]), ref),
                    policy=PER_REPORT)
    assert replay.replayed and used(db, "s1") == 9 * KB


def test_per_session_numbering_counts_a_resent_container_once(db: FakeDatabase) -> None:
    ref = opened(db)
    t1, t2 = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
    run(db, ChargingOp("update", report(t1, 1, [(1, KB)]), ref))
    run(db, ChargingOp("update", report(t2, 2, [(1, KB), (2, 2 * KB)]), ref))
    assert used(db, "s1") == 3 * KB
    # The same two reports under per-report numbering are three containers, 4 KB.
    other = small_db()
    ref = opened(other, PER_REPORT)
    run(other, ChargingOp("update", report(t1, 1, [(1, KB)]), ref), policy=PER_REPORT)
    run(other, ChargingOp("update", report(t2, 2, [(1, KB), (2, 2 * KB)]), ref),
        policy=PER_REPORT)
    assert used(other, "s1") == 4 * KB


def test_a_session_stored_without_a_digest_is_judged_by_its_number(db: FakeDatabase) -> None:
    ref = opened(db)
    session: ChargingSession = db.state.sessions[ref]
    session.last_digest = None  # as the previous schema stored it
    (answer,) = run(db, ChargingOp("update", report(T0 + timedelta(seconds=5), 0,
                                                    [(0, KB)]), ref))
    assert answer.replayed and used(db, "s1") == 0


def test_a_changed_retransmission_of_a_counting_smf_is_counted_once(db: FakeDatabase) -> None:
    # Update 1 reports container 3; its answer is lost; the SMF sends update 1 again
    # with a new instant and no retransmissionIndicator: a request that says something
    # else, so keyed by its report, but container 3 is stored already.
    ref = opened(db)
    t1 = T0 + timedelta(seconds=10)
    run(db, ChargingOp("update", report(t1, 1, [(3, 4 * KB)]), ref))
    later = t1 + timedelta(seconds=2)
    run(db, ChargingOp("update", report(later, 1, [(3, 4 * KB), (4, KB)]), ref))
    assert used(db, "s1") == 5 * KB
    # ...and a release numbered as that update, with container 4 again: once too.
    end = later + timedelta(seconds=5)
    assert run(db, ChargingOp("release", report(end, 1, [(4, KB), (5, 2 * KB)]), ref)) == [None]
    assert used(db, "s1") == 7 * KB


def test_a_copy_of_the_create_after_the_next_report_is_refused(db: FakeDatabase) -> None:
    # An SMF that numbers nothing: the create, then a report, both numbered 0.
    from carryover.services.charging.model import StaleRequest, create_key

    key = create_key({"nodeFunctionality": "SMF"}, "s1", {"chargingId": 9}, 0)
    create = ChargingOp("create", replace(
        ChargingRequest(T0, 0, (UnitRequest(1, True, MB),), "s1"), create_key=key))
    (first,) = run(db, create)
    run(db, ChargingOp("update", report(T0 + timedelta(seconds=10), 0, [(0, KB)]), first.ref))
    (copy,) = run(db, create)
    assert isinstance(copy, StaleRequest) and first.ref in str(copy)
    assert len(db.state.sessions) == 1
