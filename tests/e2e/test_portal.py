"""The subscriber portal over real HTTP on loopback, on SQLite and PostgreSQL.

Sign-in by a one-time link (once, and not after its expiry) or a subscriber key,
the session cookie, CSRF on every form, the 404 of another account's line, and
the overview's meters: the same buckets, in the same order, as the REST balance,
each rollover deposit with its expiry date, and a late CDR within grace
changing the stash on the next load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from carryover.api.app import create_app
from carryover.domain.units import format_amount
from carryover.runtime import Carryover
from carryover.services.access import api_keys
from carryover.services.access import portal_sessions as portal_access
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.loopback import serving

ZONE = "America/Los_Angeles"
MB = 1024 ** 2
STASH = "tmobile-data-stash-10gb"


@dataclass
class Portal:
    url: str
    engine: object
    keys: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def link(self, line: str = "L1", at: datetime | None = None,
             ttl: timedelta = timedelta(minutes=15)) -> str:
        token, *_ = portal_access.create_link(UnitOfWork(self.engine), line,
                                              at or datetime.now(UTC), ttl)
        return f"/portal/link/{token}"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def sign_in(client: httpx.Client, link: str) -> httpx.Response:
    page = client.get(link)
    assert page.status_code == 200
    return client.post(link, data={"csrf": csrf_of(page.text)})


@pytest.fixture
def portal(db_url) -> Iterator[Portal]:
    # Grace long enough that the cycle before now always takes late usage, whatever
    # the day this runs.
    carry = Carryover(get_settings(database_url=db_url, api_rate_per_second=0,
                                   grace_hours=24 * 40))
    engine = carry.open()
    now = datetime.now(UTC)
    opened = (now - timedelta(days=100)).replace(microsecond=0)
    provisioning.create_account(UnitOfWork(engine), "stash", 1, ZONE, opened, grace=carry.grace)
    provisioning.create_line(UnitOfWork(engine), "stash", "+14155550101", opened, STASH,
                             line_id="L1")
    provisioning.create_account(UnitOfWork(engine), "other", 1, ZONE, opened, grace=carry.grace)
    provisioning.create_line(UnitOfWork(engine), "other", "+14155550301", opened, STASH,
                             line_id="O1")
    for day in range(95):  # 300 MB a day: about 1 GB of each allowance rolls over, under
        # the stash's cap, so a late event changes the next deposit byte for byte
        at = opened + timedelta(days=day, hours=6)
        ledger_ops.record_usage(UnitOfWork(engine), "L1", 300 * MB, at, at, f"u{day}")
    keys = {"stash": api_keys.create_key(UnitOfWork(engine), "subscriber", opened, "stash")[1],
            "operator": api_keys.create_key(UnitOfWork(engine), "operator", opened)[1]}
    with serving(create_app(carry)) as url:
        yield Portal(url, engine, keys)
    engine.dispose()


def test_a_link_signs_in_once(portal):
    link = portal.link()
    with portal.client() as browser:
        signed = sign_in(browser, link)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/portal/lines/L1"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
        assert browser.get("/portal/lines/L1").status_code == 200
    with portal.client() as other_browser:
        again = sign_in(other_browser, link)
        assert again.status_code == 403
        assert "cannot be used" in again.text
        assert other_browser.get("/portal/lines/L1").status_code == 303


def test_an_expired_or_unknown_link_is_refused(portal):
    expired = portal.link(at=datetime.now(UTC) - timedelta(minutes=20),
                          ttl=timedelta(minutes=15))
    with portal.client() as browser:
        assert sign_in(browser, expired).status_code == 403
        assert sign_in(browser, "/portal/link/cpl_nothing").status_code == 403


def test_a_post_without_the_csrf_token_is_refused(portal):
    link = portal.link()
    with portal.client() as browser:
        browser.get(link)
        assert browser.post(link, data={}).status_code == 403
        assert browser.post(link, data={"csrf": "forged"}).status_code == 403
        assert sign_in(browser, link).status_code == 303  # the link was not spent
        assert browser.post("/portal/sign-out", data={}).status_code == 403
        assert browser.get("/portal/lines/L1").status_code == 200  # still signed in


def test_sign_out_ends_the_session(portal):
    with portal.client() as browser:
        sign_in(browser, portal.link())
        page = browser.get("/portal/lines/L1")
        cookie = browser.cookies.get("carryover_portal")
        out = browser.post("/portal/sign-out", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert browser.get("/portal/lines/L1").status_code == 303
    with portal.client() as thief:  # the old cookie is dead on the server too
        thief.cookies.set("carryover_portal", cookie, path="/portal")
        assert thief.get("/portal/lines/L1").status_code == 303


def test_another_accounts_line_is_404(portal):
    with portal.client() as browser:
        sign_in(browser, portal.link())
        for path in ("/portal/lines/O1", "/portal/lines/O1/usage",
                     "/portal/lines/O1/statement", "/portal/lines/nope"):
            assert browser.get(path).status_code == 404, path


def test_a_subscriber_key_signs_in_and_others_do_not(portal):
    with portal.client() as browser:
        form = browser.get("/portal/sign-in")
        csrf = csrf_of(form.text)
        wrong = browser.post("/portal/sign-in", data={"csrf": csrf, "key": "co_nope"})
        assert wrong.status_code == 403
        operator = browser.post("/portal/sign-in",
                                data={"csrf": csrf, "key": portal.keys["operator"]})
        assert operator.status_code == 403 and "operator key" in operator.text
        ok = browser.post("/portal/sign-in", data={"csrf": csrf, "key": portal.keys["stash"]})
        assert ok.status_code == 303 and ok.headers["location"] == "/portal/lines/L1"
        assert browser.get("/portal/lines/L1").status_code == 200


def meters(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-bucket="([^"]+)" data-kind="([^"]+)"', html)


def test_the_overview_shows_the_balances_buckets_in_order_with_expiry(portal):
    balance = httpx.get(f"{portal.url}/v1/lines/L1/balance",
                        headers={"Authorization": f"Bearer {portal.keys['stash']}"}).json()
    with portal.client() as browser:
        sign_in(browser, portal.link())
        page = browser.get("/portal/lines/L1").text
    shown = meters(page)
    assert [b for b, _ in shown] == [b["id"] for b in balance["buckets"]]
    deposits = [b for b in balance["buckets"] if b["kind"] == "rollover"]
    assert len(deposits) >= 2
    for deposit in deposits:
        until = datetime.fromisoformat(deposit["valid_until"]).astimezone(ZoneInfo(ZONE))
        assert f"expires {until:%Y-%m-%d %H:%M} ({ZONE})" in page
    assert "Full speed" in page
    assert "Usage may still arrive until" in page


def test_a_late_cdr_within_grace_changes_the_stash_on_the_next_load(portal):
    def newest_deposit(browser) -> tuple[str, int]:
        balance = httpx.get(f"{portal.url}/v1/lines/L1/balance", headers={
            "Authorization": f"Bearer {portal.keys['stash']}"}).json()
        newest = max((b for b in balance["buckets"] if b["kind"] == "rollover"),
                     key=lambda b: b["valid_from"])
        return newest["id"], newest["remaining"]

    with portal.client() as browser:
        sign_in(browser, portal.link())
        bucket, before = newest_deposit(browser)
        first = browser.get("/portal/lines/L1").text
        # An event of the cycle before the deposit, reported late (inside grace).
        deposit_at = datetime.fromisoformat(bucket.split("/")[3].split("#")[0])
        happened = deposit_at - timedelta(hours=5)
        ledger_ops.record_usage(UnitOfWork(portal.engine), "L1", 700 * MB, happened,
                                datetime.now(UTC), "late-1")
        second = browser.get("/portal/lines/L1").text
        after = newest_deposit(browser)[1]
    assert before - after == 700 * MB
    assert first != second
    shown = second[second.index(f'data-bucket="{bucket}"'):].split("</li>")[0]
    assert f"{format_amount(after)} left" in shown
    assert f"{format_amount(before)} left" in first


def test_the_statement_marks_a_correction_with_when_it_was_recorded(portal):
    now = datetime.now(UTC)
    with portal.client() as browser:
        sign_in(browser, portal.link())
        balance = httpx.get(f"{portal.url}/v1/lines/L1/balance", headers={
            "Authorization": f"Bearer {portal.keys['stash']}"}).json()
        start = datetime.fromisoformat(balance["cycle"]["start"])
        before_start = (start - timedelta(days=2)).astimezone(ZoneInfo(ZONE))
        path = f"/portal/lines/L1/statement?cycle={before_start:%Y-%m-%d}"
        plain = browser.get(path)
        assert plain.status_code == 200
        ledger_ops.record_usage(UnitOfWork(portal.engine), "L1", 5 * MB, start - timedelta(hours=3),
                                now, "late-statement")
        corrected = browser.get(path).text
    # (The fixture records every event today, after its cycle ended: each is marked.)
    mark = "(correction, recorded after the cycle ended)"
    assert corrected.count(mark) > plain.text.count(mark)
    assert corrected.count('class="correction"') == corrected.count(mark)


def test_the_usage_page_draws_each_day_and_the_forecast(portal):
    with portal.client() as browser:
        sign_in(browser, portal.link())
        page = browser.get("/portal/lines/L1/usage")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>", page.text)
    bars = re.findall(r'<rect [^>]*class="bar"', page.text)
    assert rows and len(bars) == len(rows)
    assert rows == sorted(rows)
    # The days so far, no day after today (the forecast covers the rest of the cycle).
    assert rows[-1] == f"{datetime.now(ZoneInfo(ZONE)):%Y-%m-%d}"
    assert "Estimate at the end of the cycle" in page.text
    assert 'role="img"' in page.text


def test_the_demo_prints_a_portal_link_that_signs_in_once(tmp_path):
    from typer.testing import CliRunner

    from carryover.cli import app

    database = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo", "--database", database, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    link = report["portal_link"]
    assert link.startswith("http://127.0.0.1:8000/portal/link/cpl_")
    engine = Carryover(get_settings(database_url=database)).open()
    token = link.rsplit("/", 1)[1]
    _, session = portal_access.sign_in_by_link(UnitOfWork(engine), token, datetime.now(UTC),
                                               timedelta(hours=1))
    assert session.line == report["statement"]["line"]
    with pytest.raises(portal_access.SignInRefused):
        portal_access.sign_in_by_link(UnitOfWork(engine), token, datetime.now(UTC),
                                      timedelta(hours=1))
    engine.dispose()
