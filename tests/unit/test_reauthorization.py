"""Which sessions a change asks to re-authorize (domain/standing.py,
services.charging.reauthorization), through the ledger's operations on the fake unit of
work.

Line s1 has the small plan of test_charging_service (4 MB, then blocked) and a session
that gave a notifyUri; line s2 has one that gave none.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carryover.domain.standing import moved, standings
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingOp,
    ChargingRequest,
    UnitRequest,
    UsedUnits,
)
from carryover.services.ledger import operations as ledger_ops
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork
from tests.unit.test_charging_service import MB, POLICY, T0, small_db

CORE = "http://127.0.0.1:9/notify"


@pytest.fixture
def db() -> FakeDatabase:
    db = small_db()
    for line, uri in (("s1", CORE), ("s2", None)):
        (answer,) = charge(FakeUnitOfWork(db), POLICY, [ChargingOp("create", ChargingRequest(
            T0, 0, (UnitRequest(1, True, MB),), line, notify_uri=uri))])
        assert answer.grants[0][1].amount == MB
    return db


def owed(db: FakeDatabase) -> list[tuple[str, list[int], str]]:
    refs = {s.ref: s.line for s in db.state.sessions.values()}
    return [(refs[n["ref"]], n["rating_groups"], n["reason"])
            for n in db.state.reauthorizations]


def test_a_top_up_that_unblocks_the_line_asks_its_core(db: FakeDatabase) -> None:
    at = T0 + timedelta(minutes=1)
    ledger_ops.record_usage(FakeUnitOfWork(db), "s1", 4 * MB, at, at, "all-of-it")
    assert [line for line, _, _ in owed(db)] == ["s1"]  # blocked now: told at once
    db.state.reauthorizations.clear()
    ledger_ops.top_up(FakeUnitOfWork(db), "s1", 2 * MB, at + timedelta(seconds=1), 30, "t1")
    assert owed(db) == [("s1", [1], "s1: top-up t1")]


def test_a_change_that_moves_no_standing_asks_nobody(db: FakeDatabase) -> None:
    at = T0 + timedelta(minutes=1)
    ledger_ops.top_up(FakeUnitOfWork(db), "s1", 2 * MB, at, 30, "t1")  # had data, has more
    ledger_ops.record_usage(FakeUnitOfWork(db), "s2", 4 * MB, at, at, "s2-all")  # no notifyUri
    ledger_ops.record_usage(FakeUnitOfWork(db), "s1", MB, at, at, "some")  # still has data
    assert owed(db) == []


def test_two_changes_before_delivery_are_two_requests(db: FakeDatabase) -> None:
    at = T0 + timedelta(minutes=1)
    ledger_ops.record_usage(FakeUnitOfWork(db), "s1", 4 * MB, at, at, "all-of-it")
    ledger_ops.top_up(FakeUnitOfWork(db), "s1", 2 * MB, at + timedelta(seconds=1), 30, "t1")
    assert [reason for _, _, reason in owed(db)] == ["s1: usage all-of-it", "s1: top-up t1"]


def test_standings_tell_qos_data_and_limits_apart(db: FakeDatabase) -> None:
    book = db.state.books[1]
    before = standings(book, ["s1", "s2", "nobody"], book.until)
    assert set(before) == {"s1", "s2"}
    assert before["s1"].has_data is True and before["s1"].data.state == "normal"
    assert moved(before, dict(before)) == []
    after = dict(before, s2=replace(before["s2"], has_data=False))
    assert moved(before, after) == ["s2"]


def test_a_session_answered_early_in_a_batch_is_asked_when_a_later_request_moves_it(
        db: FakeDatabase) -> None:
    # Two sessions of s1, the second with a notifyUri. One batch: the watched session's
    # update (normal: s1 has data), then the other's report of everything left. Answered
    # alone, the second request owes the first session a re-authorization; batched too.
    (other,) = charge(FakeUnitOfWork(db), POLICY, [ChargingOp("create", ChargingRequest(
        T0, 0, (UnitRequest(1, True, MB),), "s1"))])
    watched = next(s.ref for s in db.state.sessions.values() if s.notify_uri)
    db.state.reauthorizations.clear()
    t1 = T0 + timedelta(minutes=1)
    answers = charge(FakeUnitOfWork(db), POLICY, [
        ChargingOp("update", ChargingRequest(t1, 1, (UnitRequest(1, True, MB),)), watched),
        ChargingOp("update", ChargingRequest(t1, 1, (UnitRequest(
            1, True, MB, (UsedUnits(1, 4 * MB, t1),)),)), other.ref)])
    assert answers[0].grants[0][1].qos.state == "normal"
    assert [n["ref"] for n in db.state.reauthorizations] == [watched]
