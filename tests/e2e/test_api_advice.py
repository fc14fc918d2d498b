"""`GET /v1/lines/{line}/advice` and `carryover advise` on a stored line (docs/advice.md),
on SQLite and PostgreSQL: the response follows its OpenAPI schema, equals the pure
domain's advice folded from the same inputs, and is scoped like the balance (another
account's line answers 404, as an unknown line does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from carryover.api.rest.advice import Advice
from carryover.cli import app
from carryover.domain.advice import advise
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, Usage
from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, Api, served_api

GB = 1024**3
AT = "2026-03-05T12:00:00+00:00"
PRICED = ("id: priced-10gb\nallowance: {data: 10GB}\n"
          "overage: {action: throttle, kbps: 128kbps}\n"
          "price: {amount: \"30.00\", currency: USD}\n")


def usage() -> list[tuple[str, datetime, int]]:
    out = []
    t = JAN + timedelta(hours=10)
    n = 0
    while t < datetime(2026, 3, 5, tzinfo=UTC):
        out.append((f"ev{n:03d}", t, GB // 2 + (GB // 4 if t.weekday() >= 5 else 0)))
        t += timedelta(hours=23)
        n += 1
    return out


@pytest.fixture
def api(db_url: str, tmp_path) -> Iterator[Api]:
    with served_api(db_url) as served:
        path = tmp_path / "priced.yaml"
        path.write_text(PRICED)
        with UnitOfWork(served.engine) as uow:
            catalog.load_plan(uow, path, JAN)
            uow.commit()
        provisioning.create_line(UnitOfWork(served.engine), "acme", "+14155550109", JAN,
                                 "priced-10gb", line_id="p1")
        for ref, t, amount in usage():
            ledger_ops.record_usage(UnitOfWork(served.engine), "p1", amount, t, t, ref)
        yield served


def test_advice_follows_its_schema_and_equals_the_pure_fold(api: Api):
    response = api.call("GET", "/v1/lines/p1/advice", params={"at": AT, "cycles": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    Advice.model_validate(body)
    assert body["cycles"] == 2 and body["forecast"]["kind"] == "forecast"
    # The same inputs folded in memory, with the stored catalog.
    with UnitOfWork(api.engine) as uow:
        plans = uow.plans.all()
    book = AccountBook(CycleCalendar(1, "UTC"), plans)
    book.submit(OpenLine("open", "p1", JAN, "priced-10gb"))
    for ref, t, amount in usage():
        book.submit(Usage(ref, "p1", t, amount))
    pure = advise(book, book.applied, "p1", datetime.fromisoformat(AT), 2)
    assert json.loads(json.dumps(pure)) == {**body, "at": pure["at"]}
    plans_seen = [p["plan"] for p in body["plans"]]
    assert "priced-10gb" in plans_seen and sum(p["current"] for p in body["plans"]) == 1
    priced = next(p for p in body["plans"] if p["plan"] == "priced-10gb")
    assert priced["price_total"] == "60.00" and priced["currency"] == "USD"


def test_advice_is_scoped_like_the_balance(api: Api):
    mine = api.call("GET", "/v1/lines/p1/advice", "acme", params={"at": AT})
    assert mine.status_code == 200, mine.text
    theirs = api.call("GET", "/v1/lines/p1/advice", "other", params={"at": AT})
    unknown = api.call("GET", "/v1/lines/nope/advice", "other", params={"at": AT})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["title"] == unknown.json()["title"]
    assert api.call("GET", "/v1/lines/p1/advice", None).status_code == 401
    bad = api.call("GET", "/v1/lines/p1/advice", params={"at": AT, "cycles": 0})
    assert bad.status_code == 422


def test_advice_is_in_the_openapi_schema(api: Api):
    spec = api.call("GET", "/openapi.json", None).json()
    op = spec["paths"]["/v1/lines/{line}/advice"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/Advice")
    schemas = spec["components"]["schemas"]
    assert {"Forecast", "PlanFit", "Rollover", "Family", "Suggestion"} <= set(schemas)
    assert "from" in schemas["Suggestion"]["properties"]
    assert {p["name"] for p in op["parameters"]} >= {"line", "at", "cycles"}


def test_cli_advise_prints_local_time_and_the_same_json():
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output
    cli("init")
    cli("account", "create", "kiez", "--cycle-day", "1", "--timezone", "Europe/Berlin",
        "--at", "2026-01-01T00:00")
    cli("line", "create", "--account", "kiez", "--msisdn", "+4915110000001", "--id", "ida",
        "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-01T00:00")
    for day in range(1, 32):
        when = f"2026-01-{day:02d}T12:00"
        cli("usage", "add", "ida", "200MB", "--at", when, "--received-at", when)
    out = cli("advise", "ida", "--at", "2026-02-04T12:00", "--cycles", "1")
    assert "ida at 2026-02-04 12:00 +01:00" in out
    assert "tmobile-data-stash-10gb" in out and "Rollover deposits" in out
    view = json.loads(cli("advise", "ida", "--at", "2026-02-04T12:00", "--cycles", "1",
                          "--json"))
    assert view["cycles"] == 1 and view["forecast"]["method"] == "weekday_profile"
    [deposit] = view["rollover"]["deposits"]
    assert deposit["remaining"] == 10 * GB - 31 * 200 * 1024**2


def test_advice_of_a_family_member_lists_the_members(api: Api):
    # fam: f1 and f2 draw the AT&T pool; f2 buys a 2 GB top-up valid to the cycle's end
    # and uses nothing, f1 uses the pool. f1 has no plan of its own: no plan fit.
    ledger_ops.top_up(UnitOfWork(api.engine), "f2", 2 * GB, datetime(2026, 1, 2, tzinfo=UTC), None,
                      "t1")
    for day in range(2, 9):
        t = datetime(2026, 1, day, 9, tzinfo=UTC)
        ledger_ops.record_usage(UnitOfWork(api.engine), "f1", GB, t, t, f"f1-{day}")
    response = api.call("GET", "/v1/lines/f1/advice", "fam",
                        params={"at": "2026-01-09T00:00Z"})
    assert response.status_code == 200, response.text
    body = Advice.model_validate(response.json())
    assert body.plans == []
    assert body.family is not None
    members = {m.line: m for m in body.family.members}
    assert set(members) == {"f1", "f2"}
    assert members["f2"].projected_surplus == 2 * GB
    assert api.call("GET", "/v1/lines/f1/advice", "acme",
                    params={"at": "2026-01-09T00:00Z"}).status_code == 404
