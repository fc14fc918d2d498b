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
from carryover.services.charging.model import ChargingOp, ChargingRequest, UnitRequest
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


def test_two_changes_before_delivery_are_one_request(db: FakeDatabase) -> None:
    at = T0 + timedelta(minutes=1)
    ledger_ops.record_usage(FakeUnitOfWork(db), "s1", 4 * MB, at, at, "all-of-it")
    ledger_ops.top_up(FakeUnitOfWork(db), "s1", 2 * MB, at + timedelta(seconds=1), 30, "t1")
    assert [line for line, _, _ in owed(db)] == ["s1"]


def test_standings_tell_qos_data_and_limits_apart(db: FakeDatabase) -> None:
    book = db.state.books[1]
    before = standings(book, ["s1", "s2", "nobody"], book.until)
    assert set(before) == {"s1", "s2"}
    assert before["s1"].has_data is True and before["s1"].data.state == "normal"
    assert moved(before, dict(before)) == []
    after = dict(before, s2=replace(before["s2"], has_data=False))
    assert moved(before, after) == ["s2"]
