"""The single-event notice path (services.notify.notices.emit_from_book), a line's alert
thresholds (with the notices they fire from the stored state) and a value batch's
refusals, on a fake unit of work: no database.

A 4 MB allowance per line (as tests/unit/test_charging_service.py), so usage_50 is
2 MB, usage_80 3.2 MB and usage_100 4 MB, followed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carryover.domain.bounds import MAX_EVENT
from carryover.domain.inputs import Usage
from carryover.domain.notices import decided_at
from carryover.domain.plans import plan_from_mapping
from carryover.services.errors import NotFound, ServiceError
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.notify import alert_thresholds
from carryover.services.notify.notices import emit_from_book
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

MB = 1024**2
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SMALL = plan_from_mapping({"id": "small", "kind": "metered", "allowance": {"data": "4MB"},
                           "overage": {"action": "block"}})


def world() -> tuple[FakeDatabase, int]:
    db = FakeDatabase({"small": SMALL})
    account = db.add_account("acme")
    db.add_line(account, "s1", "small", OPENED, msisdn="+491510000001")
    db.add_line(account, "s2", "small", OPENED, msisdn="+491510000002")
    return db, account


def book_of(uow: FakeUnitOfWork, account: int):
    """The account's book in this unit of work, loaded as the charging batch loads it."""
    return uow.charging.read((), (), [uow.accounts.account(account)]).books[account][0]


def use(db: FakeDatabase, account: int, line: str, amount: int, at: datetime,
        known: str | None = None) -> int:
    """Record usage on the account's book and offer its notices, as the ledger does."""
    uow = FakeUnitOfWork(db)
    with uow:
        book = book_of(uow, account)
        outcome = book.submit(Usage(f"e-{line}-{at.isoformat()}-{amount}", line, at, amount))
        assert outcome.status == "accepted", outcome.reason
        row = uow.accounts.account(account)
        offered = emit_from_book(uow, row, book, decided_at(book, at),
                                 uow.accounts.find_line(known) if known else None)
        uow.commit()
    return offered


def test_thresholds_are_offered_once_per_line_and_cycle() -> None:
    db, account = world()
    use(db, account, "s1", 2 * MB, T0, known="s1")
    assert sorted(db.state.outbox) == [("s1", "2026-01-01T00:00:00+00:00", "usage_50")]
    row = db.state.outbox[("s1", "2026-01-01T00:00:00+00:00", "usage_50")]
    assert row["account_id"] == account
    assert row["payload"]["msisdn"] == "+491510000001"
    assert row["payload"]["account"] == "acme"
    assert row["at"] == T0
    # The same conditions again: offered again, kept once.
    assert use(db, account, "s1", 1, T0 + timedelta(minutes=1), known="s1") == 1
    assert len(db.state.outbox) == 1
    use(db, account, "s1", 2 * MB, T0 + timedelta(hours=1), known="s1")
    assert {k for _, _, k in db.state.outbox} == {"usage_50", "usage_80", "usage_100",
                                                  "blocked"}


def test_a_line_the_caller_did_not_name_gets_its_msisdn_from_the_store() -> None:
    db, account = world()
    use(db, account, "s2", 7 * MB // 2, T0, known="s1")  # s1 known, the notices are s2's
    assert {(line, kind) for line, _, kind in db.state.outbox} == {("s2", "usage_50"),
                                                                   ("s2", "usage_80")}
    assert {r["payload"]["msisdn"] for r in db.state.outbox.values()} == {"+491510000002"}


def test_nothing_is_kept_without_a_commit() -> None:
    db, account = world()
    uow = FakeUnitOfWork(db)
    with uow:
        book = book_of(uow, account)
        book.submit(Usage("e1", "s1", T0, 4 * MB))
        assert emit_from_book(uow, uow.accounts.account(account), book, T0) > 0
    assert db.state.outbox == {}


# ---- a line's alert thresholds (services.notify.alert_thresholds) --------------------


@pytest.mark.parametrize("values", [[0], [101], [50, "80"], [True], [], [10, 20, 30, 40, 50, 60]])
def test_thresholds_out_of_range_are_refused_and_nothing_is_kept(values) -> None:
    db, _ = world()
    alert_thresholds.set_thresholds(FakeUnitOfWork(db), "s1", [40])
    commits = db.commits
    with pytest.raises(ServiceError, match="alert threshold"):
        alert_thresholds.set_thresholds(FakeUnitOfWork(db), "s1", values)
    assert db.commits == commits
    assert alert_thresholds.thresholds(FakeUnitOfWork(db), "s1")["thresholds"] == [40]


def test_thresholds_read_back_what_was_set_by_any_identifier_of_the_line() -> None:
    db, account = world()
    assert alert_thresholds.thresholds(FakeUnitOfWork(db), "s1") == {
        "line": "s1", "thresholds": [50, 80, 100], "default": True}
    view = alert_thresholds.set_thresholds(FakeUnitOfWork(db), "+491510000001", [90, 30, 30])
    assert view == {"line": "s1", "thresholds": [30, 90], "default": False}
    assert alert_thresholds.thresholds(FakeUnitOfWork(db), "s1") == view
    assert alert_thresholds.thresholds(FakeUnitOfWork(db), "s2")["default"] is True
    # A book kept with the old thresholds in its snapshot is read again: the version moved.
    assert db.state.accounts[account].version == 1
    back = alert_thresholds.set_thresholds(FakeUnitOfWork(db), "s1", None)
    assert back == {"line": "s1", "thresholds": [50, 80, 100], "default": True}
    assert alert_thresholds.thresholds(FakeUnitOfWork(db), "s1") == back


def test_thresholds_of_an_unknown_line_are_not_found() -> None:
    db, _ = world()
    with pytest.raises(NotFound, match="unknown line 'nope'"):
        alert_thresholds.thresholds(FakeUnitOfWork(db), "nope")
    with pytest.raises(NotFound, match="unknown line 'nope'"):
        alert_thresholds.set_thresholds(FakeUnitOfWork(db), "nope", [10])
    assert db.commits == 0


def test_thresholds_picked_below_the_usage_fire_at_once() -> None:
    db, account = world()
    use(db, account, "s1", 5 * MB // 2, T0, known="s1")  # 62.5 % of the allowance
    assert {k for _, _, k in db.state.outbox} == {"usage_50"}
    alert_thresholds.set_thresholds(FakeUnitOfWork(db), "s1", [25, 60, 75])
    assert {(line, k) for line, _, k in db.state.outbox} == {
        ("s1", "usage_50"), ("s1", "usage_25"), ("s1", "usage_60")}
    row = db.state.outbox[("s1", "2026-01-01T00:00:00+00:00", "usage_60")]
    assert row["account_id"] == account and row["at"] == T0  # decided where the book stands
    assert row["payload"]["msisdn"] == "+491510000001"
    # Picked again: each kind still fires once per line per cycle.
    alert_thresholds.set_thresholds(FakeUnitOfWork(db), "s1", [25, 60])
    assert len(db.state.outbox) == 3


# ---- a batch of values (services.ingest.values) ---------------------------------------


def test_a_value_batch_refuses_amounts_past_the_bound_of_one_event_by_index() -> None:
    db, _ = world()
    huge = MAX_EVENT + 1
    rows = [UsageRow(f"b{n}", "s1", T0, amount, T0) for n, amount in enumerate([huge, -1])]
    result = record_batch(FakeUnitOfWork(db), rows)
    assert result.accepted == 0
    assert [n for n, _ in result.rejected] == [0, 1]
    assert all(reason.startswith("amount: ") for _, reason in result.rejected)
    assert f"{huge:,} is more than" in result.rejected[0][1]
    assert "negative" in result.rejected[1][1]
    assert db.commits == 0 and db.state.usage == {}
