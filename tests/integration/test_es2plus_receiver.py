"""handleDownloadProgressInfo over real HTTP: the emulator's device steps reach the operator.

Only the configured SM-DP+ (its bearer token) is heard; a notification that
contradicts the order is refused and kept; every field and the body are bounded.

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
from carryover.services.esim import inventory as esim_inventory
from carryover.services.esim import orders as esim
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.esim_tables import esim_events
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox
from tests.esim_support import (
    EID_A,
    EID_B,
    NOTIFICATION_TOKENS,
    SMDP_TOKEN,
    emulator,
    iccid,
    records,
)
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
        return esim.order(UnitOfWork(self.engine), self.client, line, JAN, eid=eid)

    def state(self, ident: str) -> str:
        return esim.status(UnitOfWork(self.engine), ident)["state"]

    def events(self) -> int:
        with UnitOfWork(self.engine) as uow:
            return uow.conn.execute(select(func.count()).select_from(esim_events)).scalar_one()

    def post(self, body, authorization: str | None = f"Bearer {SMDP_TOKEN}") -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        headers = {"X-Admin-Protocol": "gsma/rsp/v2.5.0"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return httpx.post(self.operator_url + PATH, content=content,
                          json=None if content is not None else body, headers=headers)

    def installed_webhooks(self) -> list[dict]:
        with UnitOfWork(self.engine) as uow:
            return list(uow.conn.execute(select(outbox.c.payload).where(
                outbox.c.kind == "esim_installed")).scalars())


@pytest.fixture
def world(db_url):
    carry = Carryover(get_settings(database_url=db_url,
                                   es2plus_notification_tokens=NOTIFICATION_TOKENS))
    engine = carry.open()
    provisioning.create_account(UnitOfWork(engine), "acct", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acct", "+4915100000001", JAN,
                             "tmobile-data-stash-10gb", line_id="alice")
    esim_inventory.import_profiles(UnitOfWork(engine), PROFILES, JAN)
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
    view = esim.status(UnitOfWork(world.engine), ordered.iccid)
    assert (view["state"], view["eid"], view["line"]) == ("installed", EID_A, "alice")
    assert [h["kind"] for h in view["history"]][-2:] == [
        "point 3 Executed-Success", "point 4 Executed-Success"]
    assert [(h["from"], h["to"]) for h in view["history"]][-2:] == [
        ("released", "downloaded"), ("downloaded", "installed")]

    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.act("disable", ordered.iccid)
        phone.act("delete", ordered.iccid)
    assert world.state(ordered.iccid) == "available"
    assert esim.status(UnitOfWork(world.engine), ordered.iccid)["eid"] is None


def test_the_same_notification_twice_changes_nothing(world):
    ordered = world.order()
    body = notification(ordered.iccid, 3)
    first = world.post(body)
    assert first.status_code == 204 and first.content == b""
    assert world.state("alice") == "downloaded"
    events, history = world.events(), esim.status(UnitOfWork(world.engine), "alice")

    body["header"]["functionCallIdentifier"] = "n1-retry"  # the SM-DP+ retrying
    again = world.post(body)
    assert again.status_code == 204
    assert world.events() == events
    assert esim.status(UnitOfWork(world.engine), "alice") == history


def test_a_notification_out_of_step_is_kept_but_not_applied(world):
    ordered = world.order()
    assert world.post(notification(ordered.iccid, 4)).status_code == 204  # no point 3 yet
    view = esim.status(UnitOfWork(world.engine), "alice")
    assert view["state"] == "released"
    assert view["history"][-1]["detail"]["outcome"] == "not applied"


def test_a_failed_install_is_an_error_the_operator_can_cancel(world):
    ordered = world.order()
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        assert phone.download(ordered.activation_code.format(), fail="install")["state"] \
            == "error"
    assert world.state("alice") == "error"
    assert esim.cancel(UnitOfWork(world.engine), world.client, "alice", JAN)["state"] == "available"
    assert world.store.profiles[ordered.iccid].state == "available"


def test_unknown_iccid_gets_a_failed_header_and_is_kept_once(world):
    unknown = iccid(777)
    before = world.events()
    response = world.post(notification(unknown, 3))
    assert failed_codes(response) == ("8.2.1", "3.9")
    assert unknown in response.json()["header"]["functionExecutionStatus"][
        "statusCodeData"]["message"]
    # The SM-DP+ retries: the same answer, and the history keeps it once.
    assert failed_codes(world.post(notification(unknown, 3))) == ("8.2.1", "3.9")
    assert world.events() == before + 1
    view = esim.status(UnitOfWork(world.engine), unknown)
    assert view["state"] is None and view["orders"] == []
    [kept] = view["history"]
    assert kept["source"] == "notification" and kept["from"] is None and kept["to"] is None
    assert kept["detail"]["outcome"] == "refused"
    assert kept["detail"]["refusal"]["subjectCode"] == "8.2.1"
    assert kept["detail"]["refusal"]["reasonCode"] == "3.9"
    assert kept["detail"]["smdp"] and kept["detail"]["eid"] == EID_A


def test_an_unauthenticated_notification_about_an_unknown_iccid_is_not_kept(world):
    before = world.events()
    response = world.post(notification(iccid(778), 3), authorization=None)
    assert response.status_code == 401
    assert world.events() == before


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


# ---- who may call ------------------------------------------------------------------

UNAUTHENTICATED = [None, "Bearer", "Bearer wrong-token-wrong-token-wrong-token",
                   f"Basic {SMDP_TOKEN}", f"Bearer {SMDP_TOKEN}x", f"Bearer {SMDP_TOKEN[:-1]}"]


def test_a_notification_without_the_smdp_token_is_refused(world):
    ordered = world.order()
    before = world.events()
    for authorization in UNAUTHENTICATED:
        response = world.post(notification(ordered.iccid, 3), authorization=authorization)
        assert response.status_code == 401, authorization
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        status = response.json()["header"]["functionExecutionStatus"]
        assert (status["status"], status["statusCodeData"]["reasonCode"]) == ("Failed", "1.2")
    assert world.state("alice") == "released"
    assert world.events() == before  # an unauthenticated caller cannot fill the history


def test_the_emulator_presents_its_token_and_is_named_in_the_history(world):
    ordered = world.order()
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.download(ordered.activation_code.format())
    history = esim.status(UnitOfWork(world.engine), "alice")["history"]
    assert [h["detail"].get("smdp") for h in history[-2:]] == ["smdp.localhost"] * 2


def test_an_emulator_without_the_token_is_not_heard(world):
    with emulator(PROFILES, world.operator_url, token=None) as (store, smdp_url), \
            Es2PlusClient(smdp_url, retries=1, sleep=lambda s: None) as client:
        ordered = esim.order(UnitOfWork(world.engine), client, "alice", JAN, eid=EID_A)
        with SimulatedDevice(smdp_url, EID_A) as phone:
            phone.download(ordered.activation_code.format())
        assert [record["delivered"][:8] for record in store.sent] == ["HTTP 401"] * 2
    assert world.state("alice") == "released"


# ---- notifications that contradict the order ---------------------------------------

def refused(world, ordered_iccid: str) -> dict:
    """The newest history row, which must be a refused notification."""
    row = esim.status(UnitOfWork(world.engine), ordered_iccid)["history"][-1]
    assert row["source"] == "notification" and row["detail"]["outcome"] == "refused"
    return row


def test_another_eid_than_the_orders_is_refused_and_kept(world):
    ordered = world.order(eid=EID_A)
    for point in (3, 4):
        response = world.post(notification(ordered.iccid, point, eid=EID_B))
        assert failed_codes(response) == ("8.1.1", "3.10")
        row = refused(world, ordered.iccid)
        assert (row["from"], row["to"], row["detail"]["eid"]) == ("released", "released", EID_B)
        assert row["detail"]["refusal"]["subjectCode"] == "8.1.1"
        assert "is not the EID" in row["detail"]["refusal"]["message"]
    view = esim.status(UnitOfWork(world.engine), ordered.iccid)
    assert (view["state"], view["eid"]) == ("released", EID_A)
    assert world.installed_webhooks() == []

    events = world.events()
    retry = world.post(notification(ordered.iccid, 3, eid=EID_B))  # the SM-DP+ retrying
    assert failed_codes(retry) == ("8.1.1", "3.10")
    assert world.events() == events


def test_a_deletion_from_another_device_does_not_return_the_profile_to_stock(world):
    ordered = world.order(eid=EID_A)
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.download(ordered.activation_code.format())
    assert [w["eid"] for w in world.installed_webhooks()] == [EID_A]
    assert failed_codes(world.post(notification(ordered.iccid, 5, eid=EID_B))) == (
        "8.1.1", "3.10")
    assert failed_codes(world.post(notification(ordered.iccid, 5, eid=None))) == (
        "8.1.1", "2.2")
    view = esim.status(UnitOfWork(world.engine), ordered.iccid)
    assert (view["state"], view["eid"], view["line"]) == ("installed", EID_A, "alice")
    assert world.store.profiles[ordered.iccid].state == "installed"  # as the SM-DP+ has it
    assert [h["detail"]["outcome"] for h in view["history"][-2:]] == ["refused", "refused"]


def test_once_on_a_device_an_unbound_order_refuses_every_other_eid(world):
    ordered = world.order(eid=None)
    assert world.post(notification(ordered.iccid, 3, eid=EID_B)).status_code == 204
    assert esim.status(UnitOfWork(world.engine), ordered.iccid)["eid"] == EID_B  # downloaded there
    assert failed_codes(world.post(notification(ordered.iccid, 4, eid=EID_A))) == (
        "8.1.1", "3.10")
    assert failed_codes(world.post(notification(ordered.iccid, 4, eid=None))) == (
        "8.1.1", "2.2")
    assert world.state(ordered.iccid) == "downloaded"
    assert world.installed_webhooks() == []
    assert world.post(notification(ordered.iccid, 4, eid=EID_B)).status_code == 204
    assert [w["eid"] for w in world.installed_webhooks()] == [EID_B]


def test_another_profile_type_is_refused_and_kept(world):
    ordered = world.order()
    response = world.post(notification(ordered.iccid, 3, profileType="business"))
    assert failed_codes(response) == ("8.2.5", "3.10")
    row = refused(world, ordered.iccid)
    assert row["detail"]["profile_type"] == "business"
    assert world.state(ordered.iccid) == "released"


# ---- bounds on fields and on the body ----------------------------------------------

OVERLONG = [
    ("profileType", "x" * 60_000, "8.2.5"),
    ("profileType", "x" * 65, "8.2.5"),
    ("notificationPointId", 10**40, "1.1"),
    ("notificationPointId", "1" + "0" * 60, "1.1"),
    ("notificationPointId", 1000, "1.1"),
    ("eid", EID_A + "0", "8.1.1"),
    ("eid", " " * 50_000 + EID_A, "8.1.1"),
    ("iccid", PROFILES[0].iccid + "00", "8.2.1"),
    ("timestamp", "2026-01-02T10:00:00" + "0" * 100 + "Z", "1.1"),
    ("resultData", "AAAA" * 3000, "1.1"),
    ("header", {"functionCallIdentifier": "c" * 257}, "1.1"),
    ("notificationPointStatus", {"status": "Failed", "statusCodeData": {
        "subjectCode": "8.1", "reasonCode": "3.8", "message": "m" * 1025}}, "1.1"),
]


def test_an_overlong_field_is_refused_and_nothing_is_stored(world):
    before = world.events()
    for field, value, subject in OVERLONG:
        response = world.post(notification(PROFILES[0].iccid, 1, **{field: value}))
        assert failed_codes(response) == (subject, "2.1"), (field, response.text[:200])
        message = response.json()["header"]["functionExecutionStatus"]["statusCodeData"][
            "message"]
        assert len(message) < 200, field  # says how long, never echoes the value
    assert world.events() == before


def test_fields_at_their_limits_are_taken(world):
    esim_inventory.import_profiles(UnitOfWork(world.engine), records(1, "p" * 64, start=50), JAN)
    profile = records(1, "p" * 64, start=50)[0]
    response = world.post(notification(
        profile.iccid + "F", 999, profileType="p" * 64, resultData="AAAA" * 2048,
        header={"functionCallIdentifier": "c" * 256}))
    assert response.status_code == 204, response.text
    row = esim.status(UnitOfWork(world.engine), profile.iccid)["history"][-1]
    assert (row["kind"], row["detail"]["outcome"]) == ("point 999 Executed-Success",
                                                       "recorded")


def test_deep_json_is_a_400_not_a_recursion_error(world):
    # 30,000 levels fit in the body limit and are far past the decoder's recursion limit.
    for depth in (9, 30_000):
        deep = world.post(b"[" * depth + b"]" * depth)
        assert deep.status_code == 400
        assert deep.json()["header"]["functionExecutionStatus"]["status"] == "Failed"
    # Brackets inside strings are text, and eight levels are allowed.
    body = notification(PROFILES[0].iccid, 1, extra=[[[[[[["[[[[[[[[[[{{{{"]]]]]]])
    assert world.post(body).status_code == 204


def test_a_body_over_64_kib_is_a_413(world):
    before = world.events()
    body = notification(PROFILES[0].iccid, 1, profileType="x" * 100_000)
    assert world.post(body).status_code == 413
    chunked = httpx.post(world.operator_url + PATH, headers={
        "Authorization": f"Bearer {SMDP_TOKEN}"}, content=iter([b" " * 40_000] * 2))
    assert chunked.status_code == 413
    assert world.events() == before
