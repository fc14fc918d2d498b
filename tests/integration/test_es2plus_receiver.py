"""handleDownloadProgressInfo over real HTTP: the emulator's device steps reach the operator.

The operator app (carryover.api.app) and the SM-DP+ emulator both run under
uvicorn on loopback; the database is SQLite or PostgreSQL (db_url).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from carryover.adapters.es2plus_client import Es2PlusClient
from carryover.adapters.smdp_device import SimulatedDevice
from carryover.adapters.smdp_store import SmdpStore
from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.services import esim, esim_inventory, provisioning
from carryover.settings import get_settings
from carryover.store.esim_tables import esim_events
from carryover.store.uow import UnitOfWork
from tests.esim_support import EID_A, emulator, iccid, records
from tests.loopback import serving

PROFILES = records(3)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
PATH = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"


@dataclass
class World:
    engine: object
    store: SmdpStore
    smdp_url: str
    operator_url: str
    client: Es2PlusClient

    def order(self, line: str = "alice", eid: str | None = EID_A) -> esim.OrderResult:
        return esim.order(self.engine, self.client, line, JAN, eid=eid)

    def state(self, ident: str) -> str:
        return esim.status(self.engine, ident)["state"]

    def events(self) -> int:
        with UnitOfWork(self.engine) as uow:
            return uow.conn.execute(select(func.count()).select_from(esim_events)).scalar_one()

    def post(self, body) -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        return httpx.post(self.operator_url + PATH, content=content,
                          json=None if content is not None else body,
                          headers={"X-Admin-Protocol": "gsma/rsp/v2.5.0"})


@pytest.fixture
def world(db_url):
    carry = Carryover(get_settings(database_url=db_url))
    engine = carry.open()
    provisioning.create_account(engine, "acct", 1, "UTC", JAN)
    provisioning.create_line(engine, "acct", "+4915100000001", JAN, "tmobile-data-stash-10gb",
                             line_id="alice")
    esim_inventory.import_profiles(engine, PROFILES, JAN)
    with serving(create_app(carry)) as operator_url, \
            emulator(PROFILES, operator_url) as (store, smdp_url), \
            Es2PlusClient(smdp_url, retries=1, sleep=lambda s: None) as client:
        yield World(engine, store, smdp_url, operator_url, client)


def notification(iccid_: str, point: int, status: str = "Executed-Success",
                 at: str = "2026-01-02T10:00:00Z", **extra) -> dict:
    return {"header": {"functionRequesterIdentifier": "smdp", "functionCallIdentifier": "n1"},
            "iccid": iccid_, "profileType": "consumer", "timestamp": at, "eid": EID_A,
            "notificationPointId": point, "notificationPointStatus": {"status": status},
            **extra}


def failed_codes(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200
    assert response.headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"
    status = response.json()["header"]["functionExecutionStatus"]
    assert status["status"] == "Failed"
    return status["statusCodeData"]["subjectCode"], status["statusCodeData"]["reasonCode"]


def test_the_device_steps_reach_the_operator(world):
    ordered = world.order()
    assert world.state("alice") == "released"
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.download(ordered.activation_code.format())
    assert [record["delivered"] for record in world.store.sent] == [True, True]
    view = esim.status(world.engine, ordered.iccid)
    assert (view["state"], view["eid"], view["line"]) == ("installed", EID_A, "alice")
    assert [h["kind"] for h in view["history"]][-2:] == [
        "point 3 Executed-Success", "point 4 Executed-Success"]
    assert [(h["from"], h["to"]) for h in view["history"]][-2:] == [
        ("released", "downloaded"), ("downloaded", "installed")]

    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.act("disable", ordered.iccid)
        phone.act("delete", ordered.iccid)
    assert world.state(ordered.iccid) == "available"
    assert esim.status(world.engine, ordered.iccid)["eid"] is None


def test_the_same_notification_twice_changes_nothing(world):
    ordered = world.order()
    body = notification(ordered.iccid, 3)
    first = world.post(body)
    assert first.status_code == 204 and first.content == b""
    assert world.state("alice") == "downloaded"
    events, history = world.events(), esim.status(world.engine, "alice")

    body["header"]["functionCallIdentifier"] = "n1-retry"  # the SM-DP+ retrying
    again = world.post(body)
    assert again.status_code == 204
    assert world.events() == events
    assert esim.status(world.engine, "alice") == history


def test_a_notification_out_of_step_is_kept_but_not_applied(world):
    ordered = world.order()
    assert world.post(notification(ordered.iccid, 4)).status_code == 204  # no point 3 yet
    view = esim.status(world.engine, "alice")
    assert view["state"] == "released"
    assert view["history"][-1]["detail"]["outcome"] == "not applied"


def test_a_failed_install_is_an_error_the_operator_can_cancel(world):
    ordered = world.order()
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        assert phone.download(ordered.activation_code.format(), fail="install")["state"] \
            == "error"
    assert world.state("alice") == "error"
    assert esim.cancel(world.engine, world.client, "alice", JAN)["state"] == "available"
    assert world.store.profiles[ordered.iccid].state == "available"


def test_unknown_iccid_gets_a_failed_header(world):
    response = world.post(notification(iccid(777), 3))
    assert failed_codes(response) == ("8.2.1", "3.9")
    assert iccid(777) in response.json()["header"]["functionExecutionStatus"][
        "statusCodeData"]["message"]


@pytest.mark.parametrize(("body", "codes"), [
    (b"{not json", ("1.1", "2.1")),
    (b"[1, 2]", ("1.1", "2.1")),
    ({"profileType": "consumer"}, ("8.2.1", "2.2")),
    ("no-profile-type", ("8.2.5", "2.2")),
    ("bad-iccid", ("8.2.1", "2.1")),
    ("bad-timestamp", ("1.1", "2.1")),
    ("bad-status", ("1.1", "2.1")),
])
def test_a_malformed_body_gets_a_failed_header(world, body, codes):
    good = notification(PROFILES[0].iccid, 3)
    variants = {
        "no-profile-type": {k: v for k, v in good.items() if k != "profileType"},
        "bad-iccid": {**good, "iccid": "8988247000000000008"},
        "bad-timestamp": {**good, "timestamp": "2026-01-02 10:00"},
        "bad-status": {**good, "notificationPointStatus": "ok"},
    }
    before = world.events()
    response = world.post(variants.get(body, body) if isinstance(body, str) else body)
    assert failed_codes(response) == codes
    assert world.events() == before


def test_the_receiver_is_in_the_openapi_schema(world):
    schema = httpx.get(world.operator_url + "/openapi.json").json()
    assert "post" in schema["paths"][PATH]
