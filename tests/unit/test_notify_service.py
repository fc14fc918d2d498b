"""The single-event notice path (services.notify.notices.emit_from_book) on a fake unit
of work: no database.

A 4 MB allowance per line (as tests/unit/test_charging_service.py), so usage_50 is
2 MB, usage_80 3.2 MB and usage_100 4 MB, followed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carryover.domain.inputs import Usage
from carryover.domain.notices import decided_at
from carryover.domain.plans import plan_from_mapping
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
