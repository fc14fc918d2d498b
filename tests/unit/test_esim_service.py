"""eSIM orders and inventory (services.esim.orders, services.esim.inventory) on a fake unit of work.

The SM-DP+ is a fake too: it answers every ES2+ function at once, or fails the one
it is told to, and records what it was asked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carryover.domain.esim.download_progress import DownloadProgress
from carryover.domain.esim.status import SUCCESS, FunctionFailed, StatusCode
from carryover.plan_files import load_presets
from carryover.services.errors import ServiceError
from carryover.services.esim import download_progress
from carryover.services.esim import inventory as esim_inventory
from carryover.services.esim import orders as esim
from carryover.services.esim.ports import ConfirmedOrder, SmdpError
from tests.esim_support import EID_A, EID_B, records
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

JAN = datetime(2026, 1, 5, tzinfo=UTC)
FEB = datetime(2026, 2, 5, tzinfo=UTC)


class FakeSmdp:
    def __init__(self, fail: str | None = None) -> None:
        self.fail, self.calls = fail, []

    def _call(self, function: str, **kwargs) -> None:
        self.calls.append((function, kwargs))
        if function == self.fail:
            raise FunctionFailed(function, "Failed", StatusCode("8.2.1", "3.9", "unknown"))

    def download_order(self, *, iccid=None, eid=None, profile_type=None) -> str:
        self._call("downloadOrder", iccid=iccid, eid=eid)
        return iccid

    def confirm_order(self, *, iccid, release, eid=None, matching_id=None,
                      confirmation_code=None) -> ConfirmedOrder:
        self._call("confirmOrder", iccid=iccid, release=release)
        return ConfirmedOrder(f"MATCH-{iccid[-4:]}", eid, "smdp.example.com")

    def cancel_order(self, *, iccid, final_status="Available", eid=None,
                     matching_id=None) -> None:
        self._call("cancelOrder", iccid=iccid, final_status=final_status)

    def release_profile(self, *, iccid) -> None:
        self._call("releaseProfile", iccid=iccid)


PROFILES = records(3)


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase(load_presets())
    account = db.add_account("acme")
    plan = sorted(load_presets())[0]
    db.add_line(account, "alice", plan, JAN - timedelta(days=4), msisdn="+491510000001")
    db.add_line(account, "bob", plan, JAN - timedelta(days=4), msisdn="+491510000002")
    assert esim_inventory.import_profiles(FakeUnitOfWork(db), PROFILES, JAN) == 3
    return db


def test_an_order_takes_the_oldest_profile_and_releases_it(db: FakeDatabase) -> None:
    smdp = FakeSmdp()
    result = esim.order(FakeUnitOfWork(db), smdp, "alice", JAN, eid=EID_A)
    assert result.iccid == PROFILES[0].iccid and result.line == "alice"
    assert result.activation_code.format() == \
        f"1$smdp.example.com$MATCH-{PROFILES[0].iccid[-4:]}"
    assert [c[0] for c in smdp.calls] == ["downloadOrder", "confirmOrder"]
    view = esim.status(FakeUnitOfWork(db), "alice")
    assert (view["state"], view["eid"], view["line"]) == ("released", EID_A, "alice")
    assert [h["kind"] for h in view["history"]] == ["import", "order", "downloadOrder",
                                                     "confirmOrder"]
    # The profile is held: stock counts it as released, the next order takes another.
    counts = esim_inventory.stock(FakeUnitOfWork(db), 1).counts["consumer"]
    assert counts == {"released": 1, "available": 2}
    assert esim.order(FakeUnitOfWork(db), smdp, "bob", JAN).iccid == PROFILES[1].iccid


def test_a_live_order_is_refused_a_second_one(db: FakeDatabase) -> None:
    esim.order(FakeUnitOfWork(db), FakeSmdp(), "alice", JAN, eid=EID_A)
    commits = db.commits
    with pytest.raises(ServiceError, match="already has profile"):
        esim.order(FakeUnitOfWork(db), FakeSmdp(), "alice", JAN, eid=EID_B)
    assert db.commits == commits  # refused before anything was written


def test_a_failed_download_order_gives_the_profile_back(db: FakeDatabase) -> None:
    with pytest.raises(SmdpError, match="refused downloadOrder"):
        esim.order(FakeUnitOfWork(db), FakeSmdp(fail="downloadOrder"), "alice", JAN)
    (order,) = db.state.orders
    assert order.closed_at == JAN and order.closed_reason.startswith("downloadOrder failed")
    assert db.state.profiles[PROFILES[0].iccid].state == "available"
    assert esim.order(FakeUnitOfWork(db), FakeSmdp(), "alice", JAN).iccid == PROFILES[0].iccid


def test_a_failed_confirm_order_cancels_the_download(db: FakeDatabase) -> None:
    smdp = FakeSmdp(fail="confirmOrder")
    with pytest.raises(SmdpError):
        esim.order(FakeUnitOfWork(db), smdp, "alice", JAN, eid=EID_A)
    assert [c[0] for c in smdp.calls] == ["downloadOrder", "confirmOrder", "cancelOrder"]
    assert db.state.profiles[PROFILES[0].iccid].state == "available"
    assert db.state.orders[0].closed_reason.startswith("confirmOrder failed")


def test_cancel_releases_the_profile_for_another_line(db: FakeDatabase) -> None:
    esim.order(FakeUnitOfWork(db), FakeSmdp(), "alice", JAN, eid=EID_A)
    out = esim.cancel(FakeUnitOfWork(db), FakeSmdp(), "alice", FEB)
    assert out == {"line": "alice", "iccid": PROFILES[0].iccid, "state": "available"}
    assert db.state.orders[0].closed_at == FEB
    with pytest.raises(ServiceError, match="no open eSIM order"):
        esim.cancel(FakeUnitOfWork(db), FakeSmdp(), "alice", FEB)
    assert esim.order(FakeUnitOfWork(db), FakeSmdp(), "bob", FEB).iccid == PROFILES[0].iccid


def test_an_import_with_one_known_profile_imports_nothing(db: FakeDatabase) -> None:
    batch = records(2, start=2)  # the first is PROFILES[2], held already
    with pytest.raises(esim_inventory.InventoryRejected) as caught:
        esim_inventory.import_profiles(FakeUnitOfWork(db), batch, FEB, "b.csv")
    assert caught.value.problems == [
        f"b.csv: ICCID {batch[0].iccid} is already in the inventory",
        f"b.csv: IMSI {batch[0].imsi} is already in the inventory"]
    assert batch[1].iccid not in db.state.profiles


def test_an_installed_notification_moves_the_profile_and_notifies_once(db) -> None:
    ordered = esim.order(FakeUnitOfWork(db), FakeSmdp(), "alice", JAN, eid=EID_A)
    downloaded, installed = (
        DownloadProgress(iccid=ordered.iccid, profile_type="consumer", timestamp=JAN,
                         point_id=point, status=SUCCESS, eid=EID_A) for point in (3, 4))
    got = download_progress.receive(FakeUnitOfWork(db), downloaded, JAN)
    assert (got.outcome, str(got.state)) == ("applied", "downloaded")
    assert db.state.outbox == {}  # downloaded is not installed: nothing to notify yet
    got = download_progress.receive(FakeUnitOfWork(db), installed, JAN + timedelta(minutes=1))
    assert (got.outcome, str(got.state)) == ("applied", "installed")
    ((key, row),) = db.state.outbox.items()
    assert key == ("alice", "2026-01-01T00:00:00+00:00", "esim_installed")
    assert row["payload"]["iccid"] == ordered.iccid and row["payload"]["eid"] == EID_A
    again = download_progress.receive(FakeUnitOfWork(db), installed, JAN + timedelta(minutes=2))
    assert again.outcome == "duplicate" and len(db.state.outbox) == 1


def test_a_notification_about_an_unknown_iccid_is_refused_and_kept_once(db) -> None:
    stranger = records(1, start=40)[0].iccid
    progress = DownloadProgress(iccid=stranger, profile_type="consumer", timestamp=JAN,
                                point_id=3, status=SUCCESS, eid=EID_A)
    for _ in range(2):  # the SM-DP+ retries
        with pytest.raises(download_progress.UnknownProfile):
            download_progress.receive(FakeUnitOfWork(db), progress, JAN, "smdp.example.com")
    (kept,) = [e for e in db.state.events if e.iccid == stranger]
    assert kept.detail["outcome"] == "refused" and kept.detail["smdp"] == "smdp.example.com"
    assert stranger not in db.state.profiles
