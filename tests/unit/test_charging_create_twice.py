"""A create sent twice opens one charging session (services.charging.group_commit, on
the fake unit of work): the copy gets the first answer and its session, and holds
nothing more.

The lines have the small plan of test_charging_service: 4 MB each, grants of 1 MB,
so a second hold would show as 1 MB less for the line's other sessions.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carryover.domain.quota import SUCCESS
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingRequest,
    StaleRequest,
    create_key,
)
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork
from tests.unit.test_charging_service import MB, POLICY, T0, ask, small_db

SMF = {"nodeFunctionality": "SMF", "nFName": "6c7a9b1e-4f0e-4a8e-9d8e-2f4b1c3d5e6f"}
S1 = "+491510000001"


@pytest.fixture
def db() -> FakeDatabase:
    return small_db()


def keyed(subscriber: str = S1, charging_id: int = 7, nf: dict = SMF,
          sequence: int = 0) -> ChargingOp:
    request = ask(T0, sequence, MB, subscriber=subscriber)
    key = create_key(nf, subscriber, {"chargingId": charging_id, "pduSessionID": 5}, sequence)
    return ChargingOp("create", replace(request, create_key=key))


def run(db: FakeDatabase, *ops: ChargingOp) -> list:
    return charge(FakeUnitOfWork(db), POLICY, list(ops))


def held(db: FakeDatabase) -> int:
    return sum(h.amount for h in db.state.holds.values())


def test_the_same_create_in_one_batch_opens_one_session(db: FakeDatabase) -> None:
    first, copy = run(db, keyed(), keyed())
    assert isinstance(first, ChargingAnswer) and isinstance(copy, ChargingAnswer)
    assert copy.ref == first.ref and copy.replayed and not first.replayed
    assert copy.grants == first.grants
    assert list(db.state.sessions) == [first.ref]
    assert held(db) == MB


def test_the_same_create_in_a_later_batch_gets_the_first_answer(db: FakeDatabase) -> None:
    (first,) = run(db, keyed())
    (copy,) = run(db, keyed())
    assert (copy.ref, copy.grants, copy.replayed) == (first.ref, first.grants, True)
    assert len(db.state.sessions) == 1 and held(db) == MB
    # Other sessions of the line still get the 3 MB left, 1 MB at a time.
    others = run(db, *(ChargingOp("create", ask(T0, 0, MB, subscriber=S1)) for _ in range(4)))
    assert [g.amount for a in others for _, g in a.grants] == [MB, MB, MB, 0]


def test_another_pdu_session_nf_or_subscriber_is_another_create(db: FakeDatabase) -> None:
    answers = run(db, keyed(), keyed(charging_id=8),
                  keyed(nf={**SMF, "nFName": "0b8f0c52-2d55-4d55-9a6c-0d3c8f0b1a2e"}),
                  keyed(subscriber="+491510000002"))
    assert len({a.ref for a in answers}) == 4
    assert held(db) == 4 * MB


def test_a_create_without_a_pdu_session_cannot_be_told_from_a_second_one(
        db: FakeDatabase) -> None:
    assert create_key(SMF, S1, {"chargingId": None, "pduSessionID": None}, 0) is None
    plain = ChargingOp("create", ask(T0, 0, MB, subscriber=S1))
    first, second = run(db, plain, plain)
    assert first.ref != second.ref and held(db) == 2 * MB


def test_a_copy_after_the_session_moved_on_is_stale(db: FakeDatabase) -> None:
    (first,) = run(db, keyed())
    (update,) = run(db, ChargingOp("update", ask(T0 + timedelta(minutes=1), 1, MB), first.ref))
    assert isinstance(update, ChargingAnswer)
    (copy,) = run(db, keyed())
    assert isinstance(copy, StaleRequest)
    assert first.ref in str(copy) and "invocationSequenceNumber 1" in str(copy)
    assert len(db.state.sessions) == 1


def test_after_release_the_same_create_opens_a_new_session(db: FakeDatabase) -> None:
    (first,) = run(db, keyed())
    release = ChargingOp("release", ChargingRequest(T0 + timedelta(minutes=1), 1), first.ref)
    assert run(db, release) == [None]
    (again,) = run(db, keyed())
    assert again.ref != first.ref and not again.replayed
    assert [g.result for _, g in again.grants] == [SUCCESS]
    # And in one batch: the release frees the key for the create after it.
    (third,) = run(db, ChargingOp("release", ChargingRequest(T0 + timedelta(minutes=2), 1),
                                  again.ref))
    _, fourth = run(db, ChargingOp("release", ChargingRequest(T0, 1), again.ref), keyed())
    assert third is None and fourth.ref not in (first.ref, again.ref)


@pytest.mark.parametrize("member", ["nodeFunctionality", "nFName", "nFFqdn", "nFIPv4Address",
                                    "nFIPv6Address"])
def test_every_nf_member_tells_creates_apart(member: str) -> None:
    session = {"chargingId": 7, "pduSessionID": 5}
    assert (create_key(SMF, S1, session, 0)
            != create_key({**SMF, member: "other"}, S1, session, 0))
    assert create_key(SMF, S1, session, 0) != create_key(SMF, S1, session, 1)
    assert len(create_key(SMF, S1, session, 0) or "") == 64
