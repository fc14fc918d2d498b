"""`/metrics` over real HTTP, on SQLite and PostgreSQL: the business series and their changes.

Counters count what this app rated (usage one by one and in batches, top-ups);
the gauges are read from the database at each scrape, so they move with the
data: rollover deposited once a cycle ends with allowance left, lines without
data once a line has used everything it had.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api_support import Api, served_api

GB = 1024**3


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        yield served


def scrape(api: Api) -> dict[tuple[str, tuple], float]:
    response = api.call("GET", "/metrics", None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def usage(api: Api, line: str, event_id: str, amount: int, at: str) -> None:
    response = api.call("POST", "/v1/usage", json={"line": line, "event_id": event_id,
                                                  "amount": amount, "at": at,
                                                  "received_at": at})
    assert response.status_code == 201, response.text


def test_business_series_change_with_the_data(api: Api):
    rated = "carryover_usage_events_rated_total"
    before = scrape(api)
    assert before[("carryover_business_metrics_up", ())] == 1
    assert before[(rated, (("route", "one"),))] == 0
    assert before[(rated, (("route", "batch"),))] == 0
    assert before.get(("carryover_rollover_deposited", (("unit", "data"),)), 0) == 0
    empty_before = before[("carryover_lines_without_data", ())]

    # One event: the counter moves; 6 GB on a 5 GB line leaves it without data.
    usage(api, "a1", "ev-1", 6 * GB, "2026-01-02T00:00Z")
    after = scrape(api)
    assert after[(rated, (("route", "one"),))] == 1
    assert after[("carryover_lines_without_data", ())] == empty_before + 1

    # A batch counts the rows it rated, not its duplicates or rejects.
    rows = [{"line": "a2", "event_id": f"b-{i}", "amount": 1000, "at": "2026-01-02T00:00Z",
             "received_at": "2026-01-02T00:00Z"} for i in range(3)]
    rows += [rows[0], {**rows[0], "event_id": "b-x", "line": "nobody"}]
    batch = api.call("POST", "/v1/usage/batch", json={"rows": rows})
    assert batch.status_code == 200 and batch.json()["accepted"] == 3, batch.text
    assert scrape(api)[(rated, (("route", "batch"),))] == 3

    # A top-up gives a1 data again; its replay is not counted twice.
    for _ in range(2):
        top = api.call("POST", "/v1/lines/a1/top-ups", headers={"Idempotency-Key": "t-1"},
                       json={"amount": GB, "valid_days": 30, "at": "2026-01-03T00:00Z"})
        assert top.status_code == 201, top.text
    after = scrape(api)
    assert after[("carryover_top_ups_total", (("unit", "data"),))] == 1
    assert after[("carryover_lines_without_data", ())] == empty_before

    # A rollover plan: 3 GB of 10 used in January, 7 GB deposited when February starts.
    line = api.call("POST", "/v1/lines", json={
        "account": "acme", "msisdn": "+14155550109", "plan": "tmobile-data-stash-10gb",
        "id": "stash", "start": "2026-01-01T00:00Z"})
    assert line.status_code == 201, line.text
    usage(api, "stash", "s-1", 3 * GB, "2026-01-10T00:00Z")
    usage(api, "stash", "s-2", 1000, "2026-02-05T00:00Z")
    after = scrape(api)
    assert after[("carryover_rollover_deposited", (("unit", "data"),))] == 7 * GB
    assert after[(rated, (("route", "one"),))] == 3
