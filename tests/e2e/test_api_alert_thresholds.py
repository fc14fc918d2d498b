"""PUT/GET /v1/lines/{line}/alert-thresholds over loopback: a subscriber picks the
percentages its own lines' usage notices fire at; another account's line is 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox
from tests.api_support import JAN, Api, served_api

GB = 1024**3
PATH = "/v1/lines/{}/alert-thresholds"


@pytest.fixture
def api(tmp_path) -> Api:
    with served_api(f"sqlite:///{tmp_path / 'api.db'}") as served:
        yield served


def test_a_subscriber_picks_its_lines_thresholds_and_they_fire(api: Api):
    assert api.call("GET", PATH.format("a1"), "acme").json() == {
        "line": "a1", "thresholds": [50, 80, 100], "default": True}
    put = api.call("PUT", PATH.format("+14155550101"), "acme", json={"thresholds": [75, 20]})
    assert put.status_code == 200, put.text
    assert put.json() == {"line": "a1", "thresholds": [20, 75], "default": False}
    assert api.call("GET", PATH.format("a1"), "operator").json()["thresholds"] == [20, 75]
    # travel-5gb-30d, opened at JAN: 5 GB for 30 days; 1.5 GB is 30 %.
    at = JAN + timedelta(days=2)
    ledger_ops.record_usage(UnitOfWork(api.engine), "a1", 3 * GB // 2, at, at, "e1")
    with UnitOfWork(api.engine) as uow:
        fired = uow.conn.execute(select(outbox.c.kind).where(outbox.c.line == "a1")).scalars()
        assert list(fired) == ["usage_20"]
    reset = api.call("PUT", PATH.format("a1"), "acme", json={"thresholds": None})
    assert reset.json() == {"line": "a1", "thresholds": [50, 80, 100], "default": True}


@pytest.mark.parametrize("body", [
    {"thresholds": []}, {"thresholds": [0]}, {"thresholds": [101]}, {"thresholds": [1.5]},
    {"thresholds": ["50"]}, {"thresholds": [True]}, {"thresholds": [1, 2, 3, 4, 5, 6]},
    {"thresholds": [50], "at": "2026-01-01T00:00:00Z"}, {},
])
def test_a_choice_that_cannot_be_kept_is_422(api: Api, body):
    answer = api.call("PUT", PATH.format("a1"), "acme", json=body)
    assert answer.status_code == 422, answer.text
    assert api.call("GET", PATH.format("a1"), "acme").json()["default"] is True


def test_another_accounts_line_is_404_as_an_unknown_one(api: Api):
    for method, kwargs in (("GET", {}), ("PUT", {"json": {"thresholds": [10]}})):
        theirs = api.call(method, PATH.format("o1"), "acme", **kwargs)
        unknown = api.call(method, PATH.format("nope"), "acme", **kwargs)
        assert theirs.status_code == unknown.status_code == 404
    assert api.call("GET", PATH.format("o1"), "other").json()["default"] is True
