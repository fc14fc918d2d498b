"""The portal's forms over HTTP on loopback, on SQLite and PostgreSQL: what a refused
change answers, and that it changes nothing; the family page only for a family."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.services.access import portal_sessions as portal_access
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.services.notify import alert_thresholds
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.loopback import serving

GB = 1024**3


@pytest.fixture
def portal(db_url) -> Iterator[tuple[str, object]]:
    carry = Carryover(get_settings(database_url=db_url, api_rate_per_second=0))
    engine = carry.open()
    opened = (datetime.now(UTC) - timedelta(days=5)).replace(microsecond=0)
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", opened,
                                "att-mobile-share-15gb")
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550201", opened, line_id="F1")
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550202", opened, line_id="F2")
    ledger_ops.top_up(UnitOfWork(engine), "F1", GB, opened + timedelta(hours=1), 30, "topup-f1")
    provisioning.create_account(UnitOfWork(engine), "solo", 1, "UTC", opened)
    provisioning.create_line(UnitOfWork(engine), "solo", "+14155550301", opened, "travel-5gb-30d",
                             line_id="S1")
    with serving(create_app(carry)) as url:
        yield url, engine
    engine.dispose()


clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while clients:
        clients.pop().close()


def signed_in(url: str, engine, line: str) -> tuple[httpx.Client, str]:
    token, *_ = portal_access.create_link(UnitOfWork(engine), line, datetime.now(UTC),
                                          timedelta(minutes=5))
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    clients.append(client)
    page = client.get(f"/portal/link/{token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    assert client.post(f"/portal/link/{token}", data={"csrf": csrf}).status_code == 200
    session_csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(
        f"/portal/lines/{line}").text)[1]
    return client, session_csrf


def gifts_of(engine, line: str) -> int:
    view = ledger_ops.balance(UnitOfWork(engine), line, datetime.now(UTC))
    return sum(b["remaining"] for b in view["buckets"] if b["kind"] == "gift")


@pytest.mark.parametrize("amount, unit", [("", "MB"), ("0", "MB"), ("-5", "MB"),
                                          ("1e3", "MB"), ("5", "TB"), ("abc", "GB")])
def test_a_gift_form_with_no_usable_amount_is_422_and_moves_nothing(portal, amount, unit):
    url, engine = portal
    client, csrf = signed_in(url, engine, "F1")
    answer = client.post("/portal/family/gift", data={
        "csrf": csrf, "from_line": "F1", "to_line": "F2", "amount": amount, "unit": unit})
    assert answer.status_code == 422
    assert gifts_of(engine, "F2") == 0


def test_a_gift_from_a_line_with_nothing_to_give_is_refused_with_the_reason(portal):
    url, engine = portal
    client, csrf = signed_in(url, engine, "F1")
    answer = client.post("/portal/family/gift", data={
        "csrf": csrf, "from_line": "F2", "to_line": "F1", "amount": "1", "unit": "GB"})
    assert answer.status_code == 422
    assert "refused" in answer.text
    ok = client.post("/portal/family/gift", data={
        "csrf": csrf, "from_line": "F1", "to_line": "F2", "amount": "0.5", "unit": "GB"})
    assert ok.status_code == 200 and "Gift made" in ok.text
    assert gifts_of(engine, "F2") == GB // 2


@pytest.mark.parametrize("text", ["0", "101", "1,2,3,4,5,6", "fifty", "12.5"])
def test_alert_thresholds_that_cannot_be_kept_are_422(portal, text):
    url, engine = portal
    client, csrf = signed_in(url, engine, "F1")
    answer = client.post("/portal/lines/F1/alert-thresholds",
                         data={"csrf": csrf, "thresholds": text})
    assert answer.status_code == 422
    assert alert_thresholds.thresholds(UnitOfWork(engine), "F1")["default"] is True


def test_alert_thresholds_picked_and_cleared_from_the_form(portal):
    url, engine = portal
    client, csrf = signed_in(url, engine, "F1")
    picked = client.post("/portal/lines/F1/alert-thresholds",
                         data={"csrf": csrf, "thresholds": "90%, 25; 60"})
    assert picked.status_code == 200 and "25, 60, 90 %" in picked.text
    assert alert_thresholds.thresholds(UnitOfWork(engine), "F1")["thresholds"] == [25, 60, 90]
    client.post("/portal/lines/F1/alert-thresholds", data={"csrf": csrf, "thresholds": ""})
    assert alert_thresholds.thresholds(UnitOfWork(engine), "F1")["default"] is True


def test_a_plan_not_offered_for_self_service_is_403(portal):
    url, engine = portal
    client, csrf = signed_in(url, engine, "S1")
    answer = client.post("/portal/lines/S1/plan-change", data={
        "csrf": csrf, "plan": "tmobile-data-stash-10gb", "effective": "next_cycle"})
    assert answer.status_code == 403
    changes = ledger_ops.statement(UnitOfWork(engine), "S1", datetime.now(UTC)).changes
    assert [c["kind"] for c in changes] == ["open_line"] or all(
        not c["ref"].startswith("plan-") for c in changes)


def test_the_family_page_is_for_a_family_only(portal):
    url, engine = portal
    client, _ = signed_in(url, engine, "S1")
    assert client.get("/portal/family").status_code == 404
    client, _ = signed_in(url, engine, "F2")
    page = client.get("/portal/family")
    assert page.status_code == 200
    assert 'data-line="F1"' in page.text and 'data-line="F2"' in page.text
