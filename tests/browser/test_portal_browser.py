"""The subscriber portal in a real browser (Chromium): what issue 19 asks to be proven.

One world per test module on SQLite, built relative to the server's now (the portal
acts at the server's now): a T-Mobile data-stash line with cycles behind it, so its
stash holds a rollover deposit per boundary, and a family on AT&T Mobile Share whose
first member has a top-up to gift. Each test signs in by a one-time link in a fresh
browser context; every page it visits is checked by axe-core and photographed at
375 px and 1280 px (tests/browser/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carryover.api.app import create_app
from carryover.domain.units import format_amount
from carryover.runtime import Carryover
from carryover.services.access import portal_sessions as portal_access
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.loopback import serving

ZONE = "America/Los_Angeles"
MB, GB = 1024**2, 1024**3
STASH = "tmobile-data-stash-10gb"
POOL = "att-mobile-share-15gb"


@dataclass
class World:
    url: str
    engine: object

    def link(self, line: str) -> str:
        token, *_ = portal_access.create_link(UnitOfWork(self.engine), line,
                                              datetime.now(UTC), timedelta(minutes=15))
        return f"{self.url}/portal/link/{token}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("portal-browser") / "carryover.db"
    # Grace long enough that the cycle before now always takes late usage.
    carry = Carryover(get_settings(database_url=f"sqlite:///{path}", api_rate_per_second=0,
                                   grace_hours=24 * 40))
    engine = carry.open()
    now = datetime.now(UTC)
    opened = (now - timedelta(days=75)).replace(microsecond=0)
    provisioning.create_account(UnitOfWork(engine), "stash", 1, ZONE, opened, grace=carry.grace)
    provisioning.create_line(UnitOfWork(engine), "stash", "+14155550101", opened, STASH,
                             line_id="L1")
    provisioning.create_account(UnitOfWork(engine), "other", 1, ZONE, opened, grace=carry.grace)
    provisioning.create_line(UnitOfWork(engine), "other", "+14155550301", opened, STASH,
                             line_id="O1")
    # 300 MB a day: about 1 GB of each allowance rolls over, under the stash's cap, so a
    # late event changes the newest deposit byte for byte.
    record_batch(UnitOfWork(engine),
                 [UsageRow(f"u{day}", "L1", opened + timedelta(days=day, hours=6),
                           300 * MB, opened + timedelta(days=day, hours=6))
                  for day in range(72)])
    family_opened = (now - timedelta(days=10)).replace(microsecond=0)
    provisioning.create_account(UnitOfWork(engine), "fam", 1, ZONE, family_opened, POOL)
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550201", family_opened, line_id="F1")
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550202", family_opened, line_id="F2")
    ledger_ops.top_up(UnitOfWork(engine), "F1", GB, family_opened + timedelta(hours=1), 30,
                      "topup-f1")
    with serving(create_app(carry)) as url:
        yield World(url, engine)
    engine.dispose()


def sign_in(page, world: World, line: str) -> None:
    page.goto(world.link(line))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/portal/lines/{line}")


def stash_deposits(page) -> list[dict]:
    return page.locator('li.meter[data-kind="rollover"]').evaluate_all(
        """items => items.map(li => ({
            id: li.dataset.bucket,
            left: Number(li.querySelector('meter') ? li.querySelector('meter').value : -1),
            dates: li.querySelector('.meter-dates').textContent.trim()}))""")


def visit(page, url: str, name: str, assert_accessible, screenshots) -> None:
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, (url, answer and answer.status)
    assert_accessible(page)
    shots = screenshots(page, name)
    assert all(Path(p).stat().st_size > 1000 for p in shots)
    assert page.off_host_requests == []


def test_a_link_signs_in_once_and_a_second_use_is_refused(world, browser, page,
                                                          assert_accessible):
    link = world.link("L1")
    page.goto(link)
    assert_accessible(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/lines/L1")
    assert page.get_by_role("heading", name="Line L1").is_visible()
    again = browser.new_context()
    try:
        other = again.new_page()
        other.goto(link)
        with other.expect_response(lambda r: r.request.method == "POST") as answer:
            other.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 403
        assert "cannot be used" in other.locator("main").inner_text()
        assert other.goto(f"{world.url}/portal/lines/L1").url.endswith("/portal/sign-in")
    finally:
        again.close()


def test_the_stash_shows_each_deposit_in_order_with_its_expiry(world, page, assert_accessible,
                                                               screenshots):
    sign_in(page, world, "L1")
    deposits = stash_deposits(page)
    assert len(deposits) >= 2, deposits
    # The stash draws the oldest deposit first (it expires first): the page's order.
    dates = [d["dates"] for d in deposits]
    assert all("Rolled over on" in d and "expires" in d and ZONE in d for d in dates), dates
    expiries = [d.split("expires ", 1)[1] for d in dates]
    assert expiries == sorted(expiries) and len(set(expiries)) == len(expiries)
    assert all(d["left"] > 0 for d in deposits)
    visit(page, f"{world.url}/portal/lines/L1", "portal-overview", assert_accessible,
          screenshots)
    for tab, name in (("usage", "portal-usage"), ("statement", "portal-statement"),
                      ("advice", "portal-advice")):
        visit(page, f"{world.url}/portal/lines/L1/{tab}", name, assert_accessible, screenshots)


def test_a_late_cdr_within_grace_changes_the_stash_on_the_next_load(world, page):
    sign_in(page, world, "L1")
    before = stash_deposits(page)
    newest = before[-1]
    # Usage of the last cycle, reported now: within grace, it counts in its own cycle,
    # so the deposit made at this cycle's start shrinks by it.
    start = datetime.fromisoformat(page.locator("dd").nth(1).inner_text().split(" to ")[0]
                                   .rsplit(" (", 1)[0])
    late_at = start.replace(tzinfo=UTC) - timedelta(days=2)
    ledger_ops.record_usage(UnitOfWork(world.engine), "L1", 100 * MB, late_at, datetime.now(UTC),
                            "late-1")
    page.reload()
    after = {d["id"]: d for d in stash_deposits(page)}
    assert after[newest["id"]]["left"] == newest["left"] - 100 * MB


def test_a_gift_from_the_family_page_moves_the_bytes(world, page, assert_accessible,
                                                     screenshots):
    def gifts_of(line: str) -> int:
        view = ledger_ops.balance(UnitOfWork(world.engine), line, datetime.now(UTC))
        return sum(b["remaining"] for b in view["buckets"] if b["kind"] == "gift")
    given_before, topup_before = gifts_of("F2"), ledger_ops.balance(
        UnitOfWork(world.engine), "F1", datetime.now(UTC))["available"]["data"]
    sign_in(page, world, "F1")
    visit(page, f"{world.url}/portal/family", "portal-family", assert_accessible, screenshots)
    form = page.get_by_role("region", name="Gift data to another line")
    form.get_by_label("From line").select_option("F1")
    form.get_by_label("To line").select_option("F2")
    form.get_by_label("Amount").fill("200")
    form.get_by_label("Unit").select_option("MB")
    form.get_by_role("button", name="Gift").click()
    page.wait_for_url("**/portal/family?done=gift")
    assert "Gift made" in page.locator("main").inner_text()
    assert gifts_of("F2") == given_before + 200 * MB
    after = ledger_ops.balance(UnitOfWork(world.engine), "F1",
                               datetime.now(UTC))["available"]["data"]
    assert after == topup_before - 200 * MB
    statement = ledger_ops.statement(UnitOfWork(world.engine), "F2", datetime.now(UTC)).as_dict()
    gifts = [e for e in statement["entries"] if e["amount"] == 200 * MB]
    assert gifts, statement["entries"]


def test_a_member_limit_and_alert_thresholds_from_the_forms(world, page):
    sign_in(page, world, "F1")
    page.goto(f"{world.url}/portal/family")
    form = page.get_by_role("region", name="Limit what a member takes from the pool")
    form.get_by_label("Member line").select_option("F2")
    form.get_by_label("Limit", exact=True).fill("2")
    form.get_by_label("Unit").select_option("GB")
    form.get_by_role("button", name="Set limit").click()
    page.wait_for_url("**/portal/family?done=limit")
    assert page.locator('tr[data-line="F2"] td').last.inner_text() == format_amount(2 * GB)
    changes = ledger_ops.statement(UnitOfWork(world.engine), "F2", datetime.now(UTC)).changes
    (limit,) = [c for c in changes if c["ref"].startswith("limit-")]
    assert limit["actor"] == "portal:fam" and limit["detail"]["amount"] == 2 * GB
    page.goto(f"{world.url}/portal/lines/F2/advice")
    page.get_by_label("Percentages").fill("30, 90")
    page.get_by_role("button", name="Save alerts").click()
    page.wait_for_url("**/advice?done=thresholds")
    assert "30, 90 %" in page.locator("#card-alerts").inner_text()


def test_a_post_without_the_csrf_token_is_refused(world, page):
    sign_in(page, world, "F1")
    answer = page.request.post(f"{world.url}/portal/family/gift", form={
        "from_line": "F1", "to_line": "F2", "amount": "1", "unit": "MB"})
    assert answer.status == 403
    forged = page.request.post(f"{world.url}/portal/family/gift", form={
        "csrf": "not-the-token", "from_line": "F1", "to_line": "F2", "amount": "1",
        "unit": "MB"})
    assert forged.status == 403


def test_another_accounts_page_is_404(world, page, assert_accessible):
    sign_in(page, world, "L1")
    for path in ("/portal/lines/O1", "/portal/lines/O1/usage", "/portal/lines/F1/advice",
                 "/portal/family"):
        answer = page.goto(f"{world.url}{path}")
        assert answer is not None and answer.status == 404, path
    assert_accessible(page)
