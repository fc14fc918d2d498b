"""GET /v1/plans and /v1/plans/{id} show every version of a plan, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from carryover.services.ledger import catalog, time_window
from carryover.store.uow import UnitOfWork
from tests.api_support import PLAN, Api, served_api

LOADED = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        yield served


def test_a_reloaded_plan_lists_both_versions(api: Api, tmp_path):
    body = tmp_path / "travel.yaml"
    body.write_text(f"id: {PLAN}\nkind: pack\nallowance: {{data: 6GB}}\n"
                    "pack: {validity_days: 30}\n")
    with UnitOfWork(api.engine) as uow:
        loaded = catalog.load_plan(uow, body, LOADED)
        uow.commit()
    assert (loaded.version, loaded.added) == (2, True)

    shown = api.call("GET", f"/v1/plans/{PLAN}", "acme").json()
    assert shown["version"] == 2
    assert shown["definition"]["allowance"] == {"data": "6GB"}  # the latest
    v1, v2 = shown["versions"]
    assert (v1["version"], v1["source"], v1["effective"]) == (1, "preset", {"always": True})
    assert v1["definition"]["allowance"] == {"data": "5GB"}  # the preset, kept
    assert (v2["version"], v2["source"], v2["recorded_at"]) == (2, "file", LOADED.isoformat())
    # Each account's first boundary after what may already be written (now + skew).
    horizon = LOADED + time_window.window().skew
    assert v2["effective"] == {"next_boundary_after": horizon.isoformat()}
    listed = api.call("GET", "/v1/plans", "acme", params={"limit": 100}).json()["items"]
    assert next(p for p in listed if p["id"] == PLAN)["versions"] == shown["versions"]
    assert all(p["version"] == len(p["versions"]) for p in listed)

    schema = api.call("GET", "/openapi.json").json()["components"]["schemas"]
    assert {"version", "versions"} <= set(schema["PlanOut"]["properties"])
    assert "effective" in schema["PlanVersionOut"]["properties"]
