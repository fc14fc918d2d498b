"""`/metrics` reports throttled and blocked lines at scrape time, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from tests.api_support import served_api


def gauges(api) -> dict[str, float]:
    response = api.call("GET", "/metrics", None)
    assert response.status_code == 200
    return {s.name: s.value for family in text_string_to_metric_families(response.text)
            for s in family.samples if not s.labels}


def test_a_blocked_line_shows_until_topped_up(db_url):
    with served_api(db_url) as api:
        before = gauges(api)
        assert before["carryover_lines_blocked"] == 0
        assert before["carryover_lines_throttled"] == 0
        # The gauges are read at the scrape's own clock: rate usage now. a1's 30-day
        # travel pack (January) is long gone, so the event is overage and blocks it.
        now = datetime.now(UTC).isoformat()
        used = api.call("POST", "/v1/usage", json={"line": "a1", "event_id": "now-1",
                                                   "amount": 1000, "at": now,
                                                   "received_at": now})
        assert used.status_code == 201, used.text
        assert gauges(api)["carryover_lines_blocked"] == 1
        top = api.call("POST", "/v1/lines/a1/top-ups", json={"amount": 10**9, "valid_days": 30})
        assert top.status_code == 201, top.text
        after = gauges(api)
        assert after["carryover_lines_blocked"] == 0
        assert after["carryover_lines_throttled"] == 0
