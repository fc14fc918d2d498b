"""eSIM orders, cancels and device moves through the services, on SQLite and PostgreSQL.

The move tests pin docs/esim.md, "Moving a line to a new device": the line owns the
balance, not the profile, so a move keeps every bucket and stash deposit of the
line, whatever happens to its profiles. The SM-DP+ is the emulator over loopback
HTTP; its notifications reach the operator's receiver, also over HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from carryover.adapters.es2plus_client import Es2PlusClient
from carryover.adapters.smdp_device import SimulatedDevice
from carryover.api.app import create_app
from carryover.domain.esim import confirmation
from carryover.runtime import Carryover
from carryover.services.errors import NotFound, ServiceError
from carryover.services.esim import inventory as esim_inventory
from carryover.services.esim import orders as esim
from carryover.services.esim.ports import SmdpError
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.esim_tables import esim_orders
from carryover.store.tables import buckets, ledger_entries, usage_events
from carryover.store.uow import UnitOfWork
from tests.esim_support import EID_A, EID_B, EID_C, NOTIFICATION_TOKENS, emulator, records
from tests.loopback import serving

GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
PROFILES = records(4)


@pytest.fixture
def world(db_url):
    carry = Carryover(get_settings(database_url=db_url,
                                   es2plus_notification_tokens=NOTIFICATION_TOKENS))
    engine = carry.open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN,
                             "tmobile-data-stash-10gb", line_id="alice")
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000002", JAN,
                             "tmobile-data-stash-10gb", line_id="bob")
    esim_inventory.import_profiles(UnitOfWork(engine), PROFILES, JAN)
    with serving(create_app(carry)) as operator_url, \
            emulator(PROFILES, operator_url) as (store, smdp_url), \
            Es2PlusClient(smdp_url, retries=1, sleep=lambda s: None) as client:
        yield SimpleNamespace(engine=engine, store=store, smdp_url=smdp_url, client=client)


def install(smdp_url: str, code, eid: str) -> None:
    with SimulatedDevice(smdp_url, eid) as phone:
        phone.download(code.format())


def rows(engine, table) -> int:
    with UnitOfWork(engine) as uow:
        return uow.conn.execute(select(func.count()).select_from(table)).scalar_one()


def snapshot(engine) -> dict:
    """Everything the line's balance is made of, read at instants on both sides of a boundary."""
    return {
        "feb": ledger_ops.balance(UnitOfWork(engine), "alice", datetime(2026, 2, 10, tzinfo=UTC)),
        "mar": ledger_ops.balance(UnitOfWork(engine), "alice", datetime(2026, 3, 1, tzinfo=UTC)),
        "statement": ledger_ops.statement(UnitOfWork(engine), "alice", FEB).as_dict(),
        "rows": [rows(engine, t) for t in (buckets, ledger_entries, usage_events)],
    }


def with_rollover(engine) -> dict:
    """3 GB used in January: 7 GB deposited in the stash at 1 February; 12 GB used after."""
    jan = datetime(2026, 1, 10, tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "alice", 3 * GB, jan, jan, "jan-1")
    at_boundary = ledger_ops.balance(UnitOfWork(engine), "alice", FEB)
    stash = [b for b in at_boundary["buckets"] if b["kind"] == "rollover"]
    assert [b["remaining"] for b in stash] == [7 * GB]
    feb = datetime(2026, 2, 5, tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "alice", 12 * GB, feb, feb, "feb-1")
    before = snapshot(engine)
    assert before["feb"]["available"] == {"data": 5 * GB}  # 10 GB allowance gone, 2 of stash
    return before


def test_move_after_deletion_keeps_the_iccid_and_every_deposit(world):
    engine, smdp_url, client = world.engine, world.smdp_url, world.client
    before = with_rollover(engine)
    ordered = esim.order(UnitOfWork(engine), client, "alice", FEB, eid=EID_A)
    install(smdp_url, ordered.activation_code, EID_A)
    assert esim.status(UnitOfWork(engine), "alice")["state"] == "installed"

    # Installed on the old phone and not deleted: the same ICCID cannot move yet.
    with pytest.raises(ServiceError, match="delete it on the old device first"):
        esim.move(UnitOfWork(engine), client, "alice", EID_B, FEB)

    with SimulatedDevice(smdp_url, EID_A) as old_phone:
        old_phone.act("delete", ordered.iccid)  # notification point 5 frees the ICCID
    moved = esim.move(UnitOfWork(engine), client, "alice", EID_B, FEB)
    assert moved.iccid == ordered.iccid and moved.eid == EID_B
    assert moved.matching_id != ordered.matching_id
    install(smdp_url, moved.activation_code, EID_B)
    view = esim.status(UnitOfWork(engine), "alice")
    assert (view["state"], view["eid"], view["line"]) == ("installed", EID_B, "alice")
    assert [o["eid"] for o in view["orders"]] == [EID_A, EID_B]

    assert snapshot(engine) == before


def test_move_to_a_fresh_iccid_while_the_old_phone_still_has_its_profile(world):
    engine, smdp_url, client = world.engine, world.smdp_url, world.client
    before = with_rollover(engine)
    ordered = esim.order(UnitOfWork(engine), client, "alice", FEB, eid=EID_A)
    install(smdp_url, ordered.activation_code, EID_A)

    moved = esim.move(UnitOfWork(engine), client, "alice", EID_B, FEB, new_iccid=True)
    assert moved.iccid != ordered.iccid
    assert esim.status(UnitOfWork(engine), "alice")["iccid"] == moved.iccid
    old = esim.status(UnitOfWork(engine), ordered.iccid)
    assert (old["state"], old["line"]) == ("installed", None)  # still on the old phone
    assert "still installed on EID" in old["orders"][-1]["closed_reason"]
    # When the old phone deletes it, the old profile returns to stock.
    with SimulatedDevice(smdp_url, EID_A) as old_phone:
        old_phone.act("delete", ordered.iccid)
    listed = {p["iccid"]: p for p in esim_inventory.list_profiles(UnitOfWork(engine))}
    assert listed[ordered.iccid]["state"] == "available" and listed[ordered.iccid]["line"] is None

    assert snapshot(engine) == before


def test_move_before_download_cancels_and_reorders_the_same_profile(world):
    engine, store, smdp_url, client = world.engine, world.store, world.smdp_url, world.client
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A)
    moved = esim.move(UnitOfWork(engine), client, "alice", EID_B, JAN)
    assert moved.iccid == ordered.iccid
    assert store.profiles[ordered.iccid].eid == EID_B
    history = [h["kind"] for h in esim.status(UnitOfWork(engine), "alice")["history"]]
    assert history[-4:] == ["cancelOrder", "move", "downloadOrder", "confirmOrder"]
    # The old activation code no longer downloads anything; the new one does.
    with SimulatedDevice(smdp_url, EID_A) as old_phone, pytest.raises(Exception, match="no "):
        old_phone.download(ordered.activation_code.format())
    install(smdp_url, moved.activation_code, EID_B)
    with pytest.raises(ServiceError, match="already ordered for EID"):
        esim.move(UnitOfWork(engine), client, "alice", EID_B, JAN)


def test_order_refusals(world):
    engine, client = world.engine, world.client
    with pytest.raises(NotFound, match="unknown line 'nobody'"):
        esim.order(UnitOfWork(engine), client, "nobody", JAN)
    with pytest.raises(ServiceError, match="MOD 97-10"):
        esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A[:-1] + "0")
    with pytest.raises(ServiceError, match="of type 'iot'"):
        esim.order(UnitOfWork(engine), client, "alice", JAN, profile_type="iot")
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN)
    with pytest.raises(ServiceError, match=f"already has profile {ordered.iccid} \\(released\\)"):
        esim.order(UnitOfWork(engine), client, "alice", JAN)
    with pytest.raises(ServiceError, match="no eSIM to move"):
        esim.move(UnitOfWork(engine), client, "bob", EID_C, JAN)
    with pytest.raises(ServiceError, match="no open eSIM order to cancel"):
        esim.cancel(UnitOfWork(engine), client, "bob", JAN)


def test_several_types_in_stock_need_a_type(world):
    engine, client = world.engine, world.client
    esim_inventory.import_profiles(UnitOfWork(engine), records(1, "iot", start=50), JAN)
    with pytest.raises(ServiceError, match=r"several types are available \(consumer, iot\)"):
        esim.order(UnitOfWork(engine), client, "alice", JAN)


def test_an_order_the_smdp_refuses_gives_the_profile_back(world):
    engine, client = world.engine, world.client
    unknown_to_smdp = records(1, "consumer", start=90)
    esim_inventory.import_profiles(UnitOfWork(engine), unknown_to_smdp,
                                   datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(SmdpError) as caught:  # the oldest profile is picked first
        esim.order(UnitOfWork(engine), client, "alice", JAN)
    assert caught.value.codes == ("8.2.1", "3.9")
    assert "SM-DP+ refused downloadOrder" in str(caught.value)
    view = esim.status(UnitOfWork(engine), unknown_to_smdp[0].iccid)
    assert view["state"] == "available" and view["line"] is None
    assert "downloadOrder failed" in view["orders"][-1]["closed_reason"]


def test_cancel_is_refused_once_installed(world):
    engine, smdp_url, client = world.engine, world.smdp_url, world.client
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A)
    install(smdp_url, ordered.activation_code, EID_A)
    with pytest.raises(SmdpError) as caught:
        esim.cancel(UnitOfWork(engine), client, "alice", JAN)
    assert caught.value.codes == ("8.2.1", "3.3")
    assert esim.status(UnitOfWork(engine), "alice")["state"] == "installed"


def test_a_confirmation_code_is_stored_only_as_a_hash(world):
    engine, smdp_url, client = world.engine, world.smdp_url, world.client
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A,
                         with_confirmation_code=True)
    code = ordered.confirmation_code
    assert code is not None and len(code) == 8 and code.isdigit()
    assert ordered.activation_code.confirmation_code_required
    with UnitOfWork(engine) as uow:
        stored = uow.conn.execute(select(esim_orders)).mappings().all()
    assert code not in repr(stored)
    assert confirmation.matches_stored(code, stored[0]["cc_hash"])
    view = esim.status(UnitOfWork(engine), "alice")
    assert code not in repr(view) and view["confirmation_code_required"] is True
    # The phone must prove the code; a wrong one is refused (notification point 2).
    with SimulatedDevice(smdp_url, EID_A) as phone:
        with pytest.raises(Exception, match="confirmation code refused"):
            phone.download(ordered.activation_code.format(), "00000000")
        assert phone.download(ordered.activation_code.format(), code)["state"] == "installed"
    kinds = [h["kind"] for h in esim.status(UnitOfWork(engine), "alice")["history"]]
    assert "point 2 Failed" in kinds and kinds[-1] == "point 4 Executed-Success"


def test_a_deleted_profile_stays_reserved_for_its_line_until_it_moves(world):
    engine, smdp_url, client = world.engine, world.smdp_url, world.client
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A)
    install(smdp_url, ordered.activation_code, EID_A)
    assert esim_inventory.stock(UnitOfWork(engine), 10).counts == {
        "consumer": {"available": 3, "installed": 1}}
    with SimulatedDevice(smdp_url, EID_A) as phone:
        phone.act("delete", ordered.iccid)
    stock = esim_inventory.stock(UnitOfWork(engine), 3)
    assert stock.counts == {"consumer": {"available": 3, "reserved": 1}}
    assert stock.low == []
    assert esim.order(UnitOfWork(engine), client, "bob", JAN).iccid != ordered.iccid
    assert [low.available for low in esim_inventory.stock(UnitOfWork(engine), 3).low] == [2]
    # A new order for alice (her profile was deleted) supersedes the old one and frees it.
    again = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_B)
    assert again.iccid == ordered.iccid  # the oldest available profile, now free again
    orders = esim.status(UnitOfWork(engine), ordered.iccid)["orders"]
    assert [o["closed_reason"] for o in orders] == ["superseded by a new order", None]


def test_a_move_to_a_fresh_iccid_with_no_stock_changes_nothing(world):
    engine, client = world.engine, world.client
    ordered = esim.order(UnitOfWork(engine), client, "alice", JAN, eid=EID_A)
    esim.order(UnitOfWork(engine), client, "bob", JAN)
    for n, line in enumerate(("carol", "dave"), start=3):
        provisioning.create_line(UnitOfWork(engine), "acct", f"+491510000000{n}", JAN,
                                 "tmobile-data-stash-10gb", line_id=line)
        esim.order(UnitOfWork(engine), client, line, JAN)
    with pytest.raises(ServiceError, match="no available profile of type 'consumer'"):
        esim.move(UnitOfWork(engine), client, "alice", EID_B, JAN, new_iccid=True)
    view = esim.status(UnitOfWork(engine), "alice")
    assert (view["iccid"], view["state"], view["eid"]) == (ordered.iccid, "released", EID_A)
