"""The ledger's use cases (services.ledger: operations, provisioning, directory, line
import) on a fake unit of work: no database.

A 1 GB plan keeps the numbers easy to follow: a line opened on its account's cycle
day has the whole 1 GB in its first cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carryover.services.errors import Conflict, Duplicate, Forbidden, NotFound, ServiceError
from carryover.services.ledger import directory, provisioning
from carryover.services.ledger import operations as ops
from carryover.services.ledger.line_import import import_lines
from carryover.services.ledger.operations import SELF_SERVICE_AT, Actor
from carryover.services.portal import family as portal_family
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

MB = 1024**2
GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
T = JAN + timedelta(days=10)
BASIC = {"id": "basic", "name": "Basic 1 GB", "kind": "metered", "allowance": {"data": "1GB"},
         "overage": {"action": "block"}}
OFFERED = {**BASIC, "id": "basic-self", "name": "Basic 1 GB, self-service",
           "self_service": True}
FAMILY = {"id": "family", "name": "Family 10 GB", "kind": "metered",
          "allowance": {"data": "10GB"}, "overage": {"action": "block"}}
SUBSCRIBER = Actor("key_subscriber", operator=False)


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase({"basic": BASIC, "basic-self": OFFERED, "family": FAMILY})


@pytest.fixture
def uow(db: FakeDatabase) -> FakeUnitOfWork:
    """One account, `acme`, with one line `l1` on the 1 GB plan, opened on Jan 1."""
    unit = FakeUnitOfWork(db)
    provisioning.create_account(unit, "acme", 1, "UTC", JAN)
    provisioning.create_line(unit, "acme", "+14155550101", JAN, "basic", line_id="l1")
    return unit


def available(uow: FakeUnitOfWork, line: str, at: datetime) -> int:
    return ops.balance(uow, line, at)["available"]["data"]


def test_a_top_up_adds_to_the_balance_read_back(uow: FakeUnitOfWork, db: FakeDatabase) -> None:
    before = available(uow, "l1", T)
    assert before == GB
    done = ops.top_up(uow, "l1", 500 * MB, T + timedelta(hours=1), 30, "tu-1")
    assert done.line == "l1" and done.outcome.status == "accepted"
    assert available(uow, "l1", T + timedelta(hours=2)) == before + 500 * MB
    # Committed: another unit of work on the database sees it, with who gave it.
    stmt = ops.statement(FakeUnitOfWork(db), "l1", T + timedelta(hours=2))
    (change,) = [c for c in stmt.changes if c["kind"] == "topup"]
    assert change["ref"] == "tu-1" and change["actor"] == "cli"
    assert change["recorded_at"] is not None


def test_usage_draws_the_balance_down(uow: FakeUnitOfWork) -> None:
    ops.record_usage(uow, "l1", 300 * MB, T, T, "ev-1")
    view = ops.balance(uow, "l1", T + timedelta(minutes=1))
    assert view["available"]["data"] == GB - 300 * MB
    assert view["cycle"]["used"]["data"] == 300 * MB


@pytest.mark.parametrize("change", [
    lambda uow: ops.top_up(uow, "l1", MB, T, None, "tu-s", actor=SUBSCRIBER),
    lambda uow: ops.change_plan(uow, "l1", "basic-self", "now", T, "pc-s", SUBSCRIBER),
    lambda uow: ops.gift(uow, "l1", "l1", MB, T, "g-s", SUBSCRIBER),
], ids=["top_up", "change_plan", "gift"])
def test_a_subscriber_giving_at_is_forbidden(uow: FakeUnitOfWork, db: FakeDatabase,
                                             change) -> None:
    commits = db.commits
    with pytest.raises(Forbidden) as refused:
        change(uow)
    assert str(refused.value) == SELF_SERVICE_AT
    assert db.commits == commits  # nothing was written
    assert directory.line(uow, "l1")["plan"] == "basic"


@pytest.mark.parametrize("call", [
    lambda uow: ops.balance(uow, "nope", T),
    lambda uow: ops.top_up(uow, "nope", MB, T, None, "tu-x"),
    lambda uow: ops.record_usage(uow, "nope", MB, T, T, "ev-x"),
    lambda uow: directory.line(uow, "nope"),
], ids=["balance", "top_up", "record_usage", "directory"])
def test_an_unknown_line_is_not_found_by_its_name(uow: FakeUnitOfWork, call) -> None:
    with pytest.raises(NotFound, match=r"^unknown line 'nope' \(give a line id"):
        call(uow)


def test_a_line_outside_the_scope_reads_as_unknown(uow: FakeUnitOfWork) -> None:
    other = provisioning.create_account(uow, "other", 1, "UTC", JAN)
    assert directory.line(uow, "l1", scope=1)["id"] == "l1"
    with pytest.raises(NotFound) as refused:
        directory.line(uow, "l1", scope=other)
    assert str(refused.value) == str(directory.unknown_line("l1"))
    with pytest.raises(NotFound, match="unknown account 'acme'"):
        directory.account(uow, "acme", scope=other)


def test_a_duplicate_usage_id_is_refused_and_counted_once(uow: FakeUnitOfWork,
                                                          db: FakeDatabase) -> None:
    first = ops.record_usage(uow, "l1", 100 * MB, T, T, "ev-1")
    assert first.outcome.status == "accepted"
    commits = db.commits
    with pytest.raises(Duplicate, match="'ev-1'"):
        ops.record_usage(uow, "l1", 100 * MB, T + timedelta(minutes=5),
                         T + timedelta(minutes=5), "ev-1")
    assert db.commits == commits
    view = ops.balance(uow, "l1", T + timedelta(hours=1))
    assert view["cycle"]["used"]["data"] == 100 * MB
    assert view["available"]["data"] == GB - 100 * MB


def test_a_gift_across_accounts_is_refused(uow: FakeUnitOfWork, db: FakeDatabase) -> None:
    provisioning.create_account(uow, "other", 1, "UTC", JAN)
    provisioning.create_line(uow, "other", "+14155550201", JAN, "basic", line_id="o1")
    ops.top_up(uow, "l1", 500 * MB, T, 30, "tu-1")
    commits = db.commits
    with pytest.raises(ServiceError, match="lines of the same account only"):
        ops.gift(uow, "l1", "o1", 100 * MB, T + timedelta(hours=1), "g-1")
    assert db.commits == commits
    later = T + timedelta(hours=2)
    assert available(uow, "l1", later) == GB + 500 * MB
    assert available(uow, "o1", later) == GB


def test_a_gift_in_a_family_moves_the_bytes(db: FakeDatabase) -> None:
    uow = FakeUnitOfWork(db)
    provisioning.create_account(uow, "fam", 1, "UTC", JAN, "family")
    provisioning.create_line(uow, "fam", "+14155550301", JAN, line_id="m1")
    provisioning.create_line(uow, "fam", "+14155550302", JAN, line_id="m2")
    ops.top_up(uow, "m1", 500 * MB, None, 30, "tu-1")  # now: still valid for the gift
    before = {m: available(uow, m, datetime.now(UTC)) for m in ("m1", "m2")}
    # From the portal: a subscriber, at the server's now.
    portal_family.gift(uow, "fam", "m1", "m2", 200 * MB, "g-1")
    after = {m: available(uow, m, datetime.now(UTC)) for m in ("m1", "m2")}
    assert before["m1"] - after["m1"] == 200 * MB
    assert after["m2"] - before["m2"] == 200 * MB


def test_a_limit_is_for_family_members_only(uow: FakeUnitOfWork) -> None:
    with pytest.raises(ServiceError, match="'l1' is not a member of a family pool"):
        ops.set_limit(uow, "l1", GB, T, "lim-1")


def test_a_created_line_is_found_by_msisdn_and_imsi(db: FakeDatabase) -> None:
    uow = FakeUnitOfWork(db)
    account_id = provisioning.create_account(uow, "acme", 5, "Europe/Berlin", JAN)
    line_id = provisioning.create_line(uow, "acme", "+14155550100", JAN + timedelta(days=4),
                                       "basic", imsi="310260000000001")
    assert line_id.startswith("ln_")
    for ident in ("+14155550100", "14155550100", "msisdn-14155550100",
                  "imsi-310260000000001", line_id):
        found = directory.line(FakeUnitOfWork(db), ident)
        assert (found["id"], found["account"], found["plan"]) == (line_id, "acme", "basic")
    assert directory.line(uow, line_id)["msisdn"] == "+14155550100"
    account = directory.account(uow, "acme")
    assert (account["id"], account["cycle_day"], account["timezone"], account["lines"]) == (
        account_id, 5, "Europe/Berlin", [line_id])


def test_names_and_numbers_are_taken_once(uow: FakeUnitOfWork, db: FakeDatabase) -> None:
    with pytest.raises(Conflict, match="account 'acme' already exists"):
        provisioning.create_account(uow, "acme", 1, "UTC", JAN)
    with pytest.raises(Conflict, match=r"MSISDN '\+14155550101' is already"):
        provisioning.create_line(uow, "acme", "+14155550101", JAN, "basic")
    with pytest.raises(Conflict, match="line id 'l1'"):
        provisioning.create_line(uow, "acme", "+14155550199", JAN, "basic", line_id="l1")
    assert [r["id"] for r in directory.lines_page(uow, None, 10)[0]] == ["l1"]


def test_a_subscriber_moves_only_to_a_plan_offered_for_self_service(uow: FakeUnitOfWork) -> None:
    with pytest.raises(Forbidden, match="'basic' is not offered for self-service"):
        ops.change_plan(uow, "l1", "basic", "now", None, "pc-1", SUBSCRIBER)
    with pytest.raises(NotFound, match="unknown plan 'nope'"):
        ops.change_plan(uow, "l1", "nope", "now", None, "pc-2", SUBSCRIBER)
    assert directory.line(uow, "l1")["plan"] == "basic"
    ops.change_plan(uow, "l1", "basic-self", "now", None, "pc-3", SUBSCRIBER)
    assert directory.line(uow, "l1")["plan"] == "basic-self"
    # An operator may choose any plan, and back-date it.
    ops.change_plan(uow, "l1", "family", "next_cycle", T, "pc-4")
    assert directory.line(uow, "l1")["plan"] == "basic-self"


def test_the_directory_pages_and_plans(uow: FakeUnitOfWork) -> None:
    provisioning.create_line(uow, "acme", "+14155550102", JAN, "basic", line_id="l2")
    provisioning.create_account(uow, "fam", 1, "UTC", JAN, "family")
    first, after = directory.lines_page(uow, None, 1)
    assert ([r["id"] for r in first], after) == (["l1"], "l1")
    rest, after = directory.lines_page(uow, after, 5)
    assert ([r["id"] for r in rest], after) == (["l2"], None)
    accounts, _ = directory.accounts_page(uow, None, 10, family=True)
    assert [(a["name"], a["pool_plan"], a["lines"]) for a in accounts] == [("fam", "family", 0)]
    plan = directory.plan(uow, "basic-self")
    assert plan["definition"] == OFFERED and plan["version"] == 1
    assert [p["id"] for p in directory.plans_page(uow, "basic", 10)[0]] == ["basic-self",
                                                                            "family"]
    with pytest.raises(NotFound, match="unknown plan 'nope'"):
        directory.plan(uow, "nope")


def test_a_line_file_imports_its_good_rows(db: FakeDatabase, tmp_path) -> None:
    uow = FakeUnitOfWork(db)
    provisioning.create_account(uow, "acme", 1, "UTC", JAN)
    path = tmp_path / "lines.csv"
    path.write_text("msisdn,imsi,account,plan,start\n"
                    "+14155550401,,acme,basic,2026-01-01T00:00:00+00:00\n"
                    "+14155550402,310260000000402,newco,basic,2026-01-01T00:00:00+00:00\n"
                    "not-a-number,,newco,basic,\n"
                    "+14155550401,,newco,basic,\n")
    summary = import_lines(uow, path, 1, "UTC", T)
    assert (summary.rows, summary.imported, summary.accounts_created) == (4, 2, 1)
    assert [row for row, _ in summary.rejected] == [3, 4]
    found = directory.line(uow, "imsi-310260000000402")
    assert (found["account"], found["plan"], found["msisdn"]) == ("newco", "basic",
                                                                  "+14155550402")
    assert directory.line(uow, "+14155550401")["account"] == "acme"
    assert available(uow, found["id"], T) == GB
