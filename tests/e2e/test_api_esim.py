"""eSIM order routes over real HTTP, on SQLite and PostgreSQL, against the SM-DP+ emulator.

The API and the emulator both run on loopback: the API calls the emulator's
ES2+ interface, and the emulator notifies the API's ES2+ receiver, so an
installation on a simulated device shows in the line's status. Ordering is
operator-only; status and QR codes are open to the line's own subscriber and
answer another account's subscriber exactly as an unknown line.
"""

from __future__ import annotations

import io
import socket
import struct
import zlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import segno

from carryover.adapters.smdp_device import SimulatedDevice
from carryover.adapters.smdp_emulator import HttpNotifier
from carryover.domain.esim.inventory import ProfileRecord
from carryover.services.esim import inventory as esim_inventory
from carryover.services.ledger.directory import unknown_line
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, served_api
from tests.e2e.test_api import is_problem
from tests.esim_support import EID_A, NOTIFICATION_TOKENS, SMDP_TOKEN, emulator, iccid, records

PROFILES = records(3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
READ_ROUTES = ["/v1/lines/{line}/esim", "/v1/lines/{line}/esim/qr.png",
               "/v1/lines/{line}/esim/qr.svg"]


@pytest.fixture
def world(db_url: str) -> Iterator[SimpleNamespace]:
    with emulator(PROFILES) as (store, smdp_url), \
            served_api(db_url, es2plus_url=smdp_url, es2plus_retries=0,
                       es2plus_notification_tokens=NOTIFICATION_TOKENS) as api:
        esim_inventory.import_profiles(UnitOfWork(api.engine), PROFILES, JAN)
        store.notify = HttpNotifier(api.url, SMDP_TOKEN)  # installs reach the API's ES2+ receiver
        yield SimpleNamespace(api=api, store=store, smdp_url=smdp_url)


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of a PNG; fails on a bad signature, CRC or size."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, {}
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    raw = zlib.decompress(chunks[b"IDAT"])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    assert len(raw) == height * (1 + (width * depth * channels + 7) // 8)
    assert b"IEND" in chunks
    return width, height, raw


def expected_qr(text: str, kind: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind=kind, scale=8, border=4)
    return out.getvalue()


def test_order_status_qr_and_install(world):
    api = world.api
    ordered = api.call("POST", "/v1/lines/a1/esim/orders", headers={"Idempotency-Key": "o-1"},
                       json={"eid": EID_A, "confirmation_code": True})
    assert ordered.status_code == 201, ordered.text
    body = ordered.json()
    assert body["line"] == "a1" and body["eid"] == EID_A and body["iccid"] == PROFILES[0].iccid
    assert body["qr"] == "LPA:" + body["activation_code"]
    assert body["matching_id"] in body["activation_code"]
    assert body["confirmation_code"] and len(body["confirmation_code"]) >= 4

    # A retry replays the order, without the confirmation code (shown once, only hashed).
    again = api.call("POST", "/v1/lines/a1/esim/orders", headers={"Idempotency-Key": "o-1"},
                     json={"eid": EID_A, "confirmation_code": True})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**body, "confirmation_code": None}
    assert len(world.store.profiles) == len(PROFILES)

    for who in ("operator", "acme"):
        status = api.call("GET", "/v1/lines/+14155550101/esim", who)
        assert status.status_code == 200, status.text
        view = status.json()
        assert (view["iccid"], view["state"], view["line"]) == (body["iccid"], "released", "a1")
        assert view["activation_code"] == body["activation_code"]
        assert view["confirmation_code_required"] is True

        png = api.call("GET", "/v1/lines/a1/esim/qr.png", who)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        width, height, _ = decode_png(png.content)
        assert width == height > 100
        assert png.content == expected_qr(body["qr"], "png")

        svg = api.call("GET", "/v1/lines/a1/esim/qr.svg", who)
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in svg.text and "<path" in svg.text
        assert svg.content == expected_qr(body["qr"], "svg")

    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.download(body["activation_code"], body["confirmation_code"])
    assert api.call("GET", "/v1/lines/a1/esim", "acme").json()["state"] == "installed"


@pytest.mark.parametrize("path", READ_ROUTES)
def test_another_accounts_subscriber_gets_the_unknown_line_404(world, path):
    api = world.api
    assert api.call("POST", "/v1/lines/a1/esim/orders", json={}).status_code == 201
    for ident in ("a1", "+14155550101"):
        stranger = is_problem(api.call("GET", path.format(line=ident), "other"), 404)
        missing = is_problem(api.call("GET", path.format(line=ident + "9")), 404)
        assert stranger["detail"] == str(unknown_line(ident))
        assert missing["detail"] == str(unknown_line(ident + "9"))
    # The own line without any order: a plain 404 that names it.
    assert "no eSIM order" in is_problem(api.call("GET", path.format(line="a2"), "acme"),
                                         404)["detail"]


def test_ordering_is_operator_only(world):
    api = world.api
    for who in ("acme", "other"):
        is_problem(api.call("POST", "/v1/lines/a1/esim/orders", who, json={}), 403)
    is_problem(api.call("POST", "/v1/lines/a1/esim/orders", None, json={}), 401)
    assert "esim" not in api.call("GET", "/v1/lines/a1", "acme").text


def test_refusals_are_problems(world):
    api = world.api
    bad_eid = is_problem(api.call("POST", "/v1/lines/a1/esim/orders", json={"eid": "123"}), 422)
    assert "EID" in bad_eid["detail"]
    extra = is_problem(api.call("POST", "/v1/lines/a1/esim/orders", json={"colour": "red"}), 422)
    assert extra["errors"][0]["field"] == "body.colour"
    is_problem(api.call("POST", "/v1/lines/zz/esim/orders", json={}), 404)

    # A profile we hold but the SM-DP+ does not: ES2+ refuses with subject 8.2.1, reason 3.9.
    ghost = ProfileRecord(iccid(90), "262019999999999", "travel")
    esim_inventory.import_profiles(UnitOfWork(api.engine), [ghost], JAN)
    refused = is_problem(api.call("POST", "/v1/lines/a1/esim/orders",
                                  json={"profile_type": "travel"}), 422)
    assert "8.2.1" in refused["detail"] and "3.9" in refused["detail"]
    assert ghost.iccid in refused["detail"]
    # The failed order is closed and its line may order again.
    again = api.call("POST", "/v1/lines/a1/esim/orders", json={"profile_type": "consumer"})
    assert again.status_code == 201, again.text
    busy = is_problem(api.call("POST", "/v1/lines/a1/esim/orders",
                               json={"profile_type": "consumer"}), 422)
    assert "already has profile" in busy["detail"]


def test_an_unreachable_smdp_is_a_502(db_url):
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with served_api(db_url, es2plus_url=f"http://127.0.0.1:{port}", es2plus_retries=0,
                    es2plus_timeout=2) as api:
        esim_inventory.import_profiles(UnitOfWork(api.engine), PROFILES, JAN)
        down = is_problem(api.call("POST", "/v1/lines/a1/esim/orders", json={}), 502)
        assert "unreachable" in down["detail"]
        assert "Traceback" not in down["detail"]
