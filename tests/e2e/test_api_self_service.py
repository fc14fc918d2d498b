"""Self-service over real HTTP: a subscriber acts at now, on offered plans only, and every
change is recorded with who made it and when (docs/security.md).

The probe this reproduces: with a subscriber key, a plan change to an unlimited plan
`"at": <eight months ago>` answered 201 and erased that cycle's overage and its charge.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from carryover.services.access import api_keys
from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, Api, served_api

GB = 1024 ** 3
CHARGED = "china-mobile-jiezhuan-20gb"  # overage charged per MB


@pytest.fixture
def api(db_url: str, tmp_path) -> Iterator[Api]:
    with served_api(db_url) as served:
        provisioning.create_line(UnitOfWork(served.engine), "acme", "+14155550109", JAN, CHARGED,
                                 line_id="c1")
        # What an operator offers for self-service: the same unlimited plan, flagged.
        offered = tmp_path / "go5g-self.yaml"
        offered.write_text("id: go5g-self\nname: Go5G, self-service\nkind: unlimited\n"
                           "allowance: {data: unlimited}\nunlimited: {premium: 100GB}\n"
                           "overage: {action: block}\nself_service: true\n")
        with UnitOfWork(served.engine) as uow:
            catalog.load_plan(uow, offered, JAN)
            uow.commit()
        yield served


def key_id(api: Api, who: str) -> str:
    principal = api_keys.authenticate(UnitOfWork(api.engine), api.tokens[who])
    assert principal is not None
    return principal.key_id


def past_cycle(api: Api) -> datetime:
    """An instant eight months ago with 45 GB used in its cycle: 5 GB over the 20 GB
    allowance and the 20 GB carried over from the unused cycle before."""
    then = (datetime.now(UTC) - timedelta(days=240)).replace(microsecond=0)
    assert then > JAN + timedelta(days=31)  # the line was open then, in a full cycle
    ledger_ops.record_usage(UnitOfWork(api.engine), "c1", 45 * GB, then, then, "ev-past")
    return then


def statement(api: Api, at: datetime, who: str = "operator") -> dict:
    response = api.call("GET", "/v1/lines/c1/statement", who, params={"at": at.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_subscriber_cannot_rewrite_a_past_cycle(api: Api):
    then = past_cycle(api)
    before = statement(api, then)
    assert before["units"]["data"]["overage"] == 5 * GB
    charge = before["units"]["data"]["overage_charge"]
    assert charge is not None and charge.endswith("CNY")
    for plan in ("tmobile-go5g", "go5g-self"):
        refused = api.call("POST", "/v1/lines/c1/plan-change", "acme", json={
            "plan": plan, "effective": "now", "at": (then - timedelta(days=1)).isoformat()})
        assert refused.status_code == 403, refused.text
        assert "`at`" in refused.json()["detail"]
    after = statement(api, then)
    assert after["units"]["data"]["overage"] == 5 * GB
    assert after["units"]["data"]["overage_charge"] == charge
    assert after["entries"] == before["entries"]


def test_limit_and_gifts_of_a_subscriber_happen_now(api: Api):
    past = "2026-01-04T00:00Z"
    top = api.call("POST", "/v1/lines/f1/top-ups",  # gifts move top-up or rollover bytes
                   json={"amount": GB, "valid_days": 30, "at": "2026-01-03T00:00Z"})
    assert top.status_code == 201, top.text
    for path, body in (("/v1/lines/f1/limit", {"amount": GB, "at": past}),
                       ("/v1/lines/f1/gifts", {"to_line": "f2", "amount": 1, "at": past})):
        refused = api.call("POST", path, "fam", json=body)
        assert refused.status_code == 403, refused.text
        assert "`at`" in refused.json()["detail"]
        # The operator may say when; the change is recorded as the operator's.
        assert api.call("POST", path, json=body).status_code == 201
    assert api.call("POST", "/v1/lines/f1/limit", "fam", json={"amount": GB}).status_code == 201
    assert api.call("POST", "/v1/lines/f1/top-ups",
                    json={"amount": GB, "valid_days": 30}).status_code == 201
    gift = api.call("POST", "/v1/lines/f1/gifts", "fam", json={"to_line": "f2", "amount": 1})
    assert gift.status_code == 201, gift.text
    # `at: null` is no instant at all: the server's now.
    assert api.call("POST", "/v1/lines/f1/limit", "fam",
                    json={"amount": GB, "at": None}).status_code == 201


def test_only_offered_plans_are_self_service(api: Api):
    refused = api.call("POST", "/v1/lines/c1/plan-change", "acme",
                       json={"plan": "tmobile-go5g", "effective": "next_cycle"})
    assert refused.status_code == 403, refused.text
    assert "'tmobile-go5g'" in refused.json()["detail"]
    assert "self_service" in refused.json()["detail"]
    missing = api.call("POST", "/v1/lines/c1/plan-change", "acme",
                       json={"plan": "no-such-plan", "effective": "now"})
    assert missing.status_code == 404, missing.text
    done = api.call("POST", "/v1/lines/c1/plan-change", "acme",
                    json={"plan": "go5g-self", "effective": "now"})
    assert done.status_code == 201, done.text
    assert api.call("GET", "/v1/lines/c1", "acme").json()["plan"] == "go5g-self"
    # An operator may choose any plan.
    assert api.call("POST", "/v1/lines/c1/plan-change",
                    json={"plan": "tmobile-go5g", "effective": "now"}).status_code == 201


def test_changes_are_recorded_with_who_and_when(api: Api):
    then = past_cycle(api)
    started = datetime.now(UTC)
    done = api.call("POST", "/v1/lines/c1/plan-change", "acme",
                    json={"plan": "go5g-self", "effective": "now"})
    assert done.status_code == 201, done.text
    # An operator back-dates a top-up into the past cycle: allowed, and shown as such.
    top = api.call("POST", "/v1/lines/c1/top-ups",
                   json={"amount": GB, "valid_days": 7, "at": then.isoformat()})
    assert top.status_code == 201, top.text
    finished = datetime.now(UTC)

    past = {c["ref"]: c for c in statement(api, then)["changes"]}
    back_dated = past[top.json()["ref"]]
    assert back_dated["actor"] == key_id(api, "operator")
    assert back_dated["kind"] == "topup"
    assert datetime.fromisoformat(back_dated["at"]) == then
    assert started <= datetime.fromisoformat(back_dated["recorded_at"]) <= finished
    assert done.json()["ref"] not in past  # effective now, not in that cycle

    current = {c["ref"]: c for c in statement(api, finished, "acme")["changes"]}
    mine = current[done.json()["ref"]]
    assert mine["actor"] == key_id(api, "acme")
    assert mine["detail"]["plan_id"] == "go5g-self"
    # The subscriber's change took effect when it was recorded: the server's now.
    assert started <= datetime.fromisoformat(mine["at"]) <= finished
    assert mine["at"] == mine["recorded_at"]
    # The line's opening is there too, made through the service as the CLI makes it.
    opened = statement(api, JAN)["changes"]
    assert [(c["kind"], c["actor"]) for c in opened] == [("open", "cli")]
