"""The Nchf group commit (services.charging.group_commit) on a fake unit of work: no database.

Plans of a few MB; grants of at most 1 MB (as tests/integration/test_charging_batch.py),
so the numbers can be followed by hand: a 4 MB allowance grants 1 MB, 1 MB, 1 MB, 1 MB,
then refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carryover.domain.plans import plan_from_mapping
from carryover.domain.quota import QUOTA_LIMIT_REACHED, SUCCESS
from carryover.plan_files import load_presets
from carryover.services.charging.group_commit import charge
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
from carryover.settings import Settings
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

MB = 1024**2
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SMALL = plan_from_mapping({"id": "small", "kind": "metered", "allowance": {"data": "4MB"},
                           "overage": {"action": "block"}})
POLICY = ChargingPolicy.from_settings(Settings(
    nchf_max_grant=MB, nchf_threshold_percent=20, nchf_validity_seconds=1800,
    nchf_hold_margin_seconds=60))


@pytest.fixture
def db() -> FakeDatabase:
    return small_db()


def small_db() -> FakeDatabase:
    """Account acme: lines s1 and s2 on the small plan."""
    db = FakeDatabase({**load_presets(), "small": SMALL})
    account = db.add_account("acme")
    db.add_line(account, "s1", "small", OPENED, msisdn="+491510000001")
    db.add_line(account, "s2", "small", OPENED, msisdn="+491510000002")
    db.commits = 0
    return db


def ask(at: datetime, sequence: int, want: int | None = MB, used: int = 0,
        used_sequence: int = 0, subscriber: str | None = None) -> ChargingRequest:
    usage = (UsedUnits(used_sequence, used, at),) if used else ()
    return ChargingRequest(at, sequence, (UnitRequest(1, want is not None, want, usage),),
                           subscriber)


def create(subscriber: str, at: datetime = T0, want: int | None = MB) -> ChargingOp:
    return ChargingOp("create", ask(at, 0, want, subscriber=subscriber))


def one(db: FakeDatabase, op: ChargingOp):
    (result,) = charge(FakeUnitOfWork(db), POLICY, [op])
    return result


def test_a_create_grants_and_holds_what_it_asked_for(db: FakeDatabase) -> None:
    answer = one(db, create("+491510000001"))
    assert isinstance(answer, ChargingAnswer) and answer.line == "s1"
    ((rating_group, grant),) = answer.grants
    assert (rating_group, grant.result, grant.amount) == (1, SUCCESS, MB)
    assert grant.threshold == MB * 20 // 100
    # Committed once: the session (with its answer, for a retransmission) and its hold.
    assert db.commits == 1
    session = db.state.sessions[answer.ref]
    assert (session.line, session.sequence) == ("s1", 0)
    hold = db.state.holds[(answer.ref, 1)]
    assert hold.amount == MB
    assert hold.expires_at == T0 + timedelta(seconds=1800 + 60)


def test_holds_of_other_sessions_count_against_the_line(db: FakeDatabase) -> None:
    # s1's 4 MB: four sessions get 1 MB each, a fifth nothing (the plan blocks); s2 has
    # its own 4 MB.
    ops = [create("s1"), create("+491510000001"), create("s1"), create("s1"), create("s1"),
           create("s2")]
    answers = charge(FakeUnitOfWork(db), POLICY, ops)
    amounts = [a.grants[0][1].amount for a in answers]
    assert amounts == [MB, MB, MB, MB, 0, MB]
    refused = answers[4].grants[0][1]
    assert refused.result == QUOTA_LIMIT_REACHED and refused.final_action == "TERMINATE"
    assert db.commits == 1  # one transaction for the batch
    assert sorted(h.amount for h in db.state.holds.values()) == [MB] * 5
    # Committed: the next batch sees the holds and grants s1 nothing more.
    assert one(db, create("s1")).grants[0][1].amount == 0


def test_a_batch_answers_as_its_requests_one_by_one(db: FakeDatabase) -> None:
    alone = FakeDatabase({**load_presets(), "small": SMALL})
    alone.state = db.copy()
    ops = [create("s1"), create("s1"), create("s2"), create("s1"), create("s1"), create("s1")]
    batched = [a.grants for a in charge(FakeUnitOfWork(db), POLICY, ops)]
    singly = [one(alone, op).grants for op in ops]
    assert batched == singly
    assert alone.commits == len(ops) and db.commits == 1


def test_an_unknown_subscriber_is_refused_and_the_batch_goes_on(db: FakeDatabase) -> None:
    answers = charge(FakeUnitOfWork(db), POLICY, [create("+49000"), create("s1")])
    assert isinstance(answers[0], UnknownSubscriber)
    assert isinstance(answers[1], ChargingAnswer)
    assert list(db.state.sessions) == [answers[1].ref]


def test_used_units_are_rated_once_and_replace_the_hold(db: FakeDatabase) -> None:
    first = one(db, create("s1"))
    at = T0 + timedelta(minutes=5)
    update = ChargingOp("update", ask(at, 1, MB, used=MB // 2, used_sequence=1), first.ref)
    second = one(db, update)
    assert second.grants[0][1].amount == MB
    assert list(db.state.usage) == [f"nchf:{first.ref}:1:1"]
    assert db.state.holds[(first.ref, 1)].granted_at == at  # replaced, not added
    # The core sends the same containers again with a new request: counted once.
    again = ChargingOp("update", ask(at, 2, MB, used=MB // 2, used_sequence=1), first.ref)
    one(db, again)
    assert len(db.state.usage) == 1
    assert used(db, "s1") == MB // 2


def used(db: FakeDatabase, line: str) -> int:
    """The line's data used in the cycle, as its book counts it."""
    return sum(v for (_, ln, unit, name), v in db.state.books[1].counters.items()
               if ln == line and str(unit) == "data" and name == "used")


def test_a_retransmission_gets_the_stored_answer(db: FakeDatabase) -> None:
    first = one(db, create("s1"))
    update = ChargingOp("update", ask(T0 + timedelta(minutes=1), 1, MB), first.ref)
    answer = one(db, update)
    holds = dict(db.state.holds)
    replay = one(db, update)
    assert replay.replayed and replay.grants == answer.grants
    assert db.state.holds == holds  # no second grant
    stale = one(db, ChargingOp("update", ask(T0 + timedelta(minutes=2), 0, MB), first.ref))
    assert isinstance(stale, StaleRequest)


def test_a_release_gives_the_holds_back(db: FakeDatabase) -> None:
    first = one(db, create("s1"))
    assert one(db, ChargingOp("release", ask(T0 + timedelta(minutes=1), 1, None),
                              first.ref)) is None
    assert db.state.holds == {}
    assert db.state.sessions[first.ref].released_at == T0 + timedelta(minutes=1)
    late = one(db, ChargingOp("update", ask(T0 + timedelta(minutes=2), 2, MB), first.ref))
    assert isinstance(late, SessionNotFound)
    # What was held is free again: another session gets the full grant.
    assert one(db, create("s2")).grants[0][1].amount == MB


def test_a_failed_write_leaves_nothing_behind(db: FakeDatabase, monkeypatch) -> None:
    from tests.unit import fakes

    def broken(self, holds) -> None:
        raise OSError("the disk is gone")

    monkeypatch.setattr(fakes.FakeCharging, "put_holds", broken)
    with pytest.raises(OSError):
        one(db, create("s1"))
    assert db.commits == 0
    assert db.state.sessions == {} and db.state.holds == {}
    assert db.state.accounts[1].version == 0
