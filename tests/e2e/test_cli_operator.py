"""The operator's command line end to end on a real SQLite file (see conftest.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from carryover.cli import app

GB = 1024**3
runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def family(tmp_path):
    """A family account on AT&T 15 GB (America/New_York, cycle day 5) with two members."""
    cli("init")
    cli("account", "create", "smith", "--cycle-day", "5", "--timezone", "America/New_York",
        "--pool-plan", "att-mobile-share-15gb", "--at", "2026-01-05T00:00")
    cli("line", "create", "--account", "smith", "--msisdn", "+14155550101", "--id", "ann",
        "--start", "2026-01-05T00:00")
    cli("line", "create", "--account", "smith", "--msisdn", "+14155550102", "--id", "ben",
        "--imsi", "310260000000102", "--start", "2026-01-05T00:00")


def test_a_family_cycle_through_the_cli(family):
    cli("family", "limit", "ben", "2GB", "--at", "2026-01-05T00:00")
    cli("usage", "add", "+14155550101", "4GB", "--at", "2026-01-10T12:00",
        "--received-at", "2026-01-10T12:05", "--event-id", "e1")
    cli("usage", "add", "310260000000102", "3GB", "--at", "2026-01-11T12:00",
        "--received-at", "2026-01-11T12:05", "--event-id", "e2")
    ben = json.loads(cli("balance", "ben", "--at", "2026-01-12T00:00", "--json"))
    # ben may take 2 GB from the pool; 3 GB used -> 2 GB from the pool, 1 GB overage.
    assert ben["cycle"]["used"] == {"data": 3 * GB}
    assert ben["cycle"]["overage"] == {"data": 1 * GB}
    assert ben["available"] == {"data": 0}
    assert ben["qos"] == {"state": "throttled", "max_downlink_kbps": 128}
    ann = json.loads(cli("balance", "ann", "--at", "2026-01-12T00:00", "--json"))
    # Pool: 15 GB - 4 GB (ann) - 2 GB (ben) = 9 GB, all of it open to ann.
    assert ann["available"] == {"data": 9 * GB}

    # At the boundary (5 Feb 00:00 New York = 05:00 UTC) the 9 GB roll over (AT&T: at
    # most the allowance, 15 GB) and are usable at once, with no job run in between.
    feb = json.loads(cli("balance", "ann", "--at", "2026-02-05T00:00", "--json"))
    assert feb["available"] == {"data": 15 * GB + 9 * GB}
    rollover = [b for b in feb["buckets"] if b["kind"] == "rollover"]
    assert rollover and rollover[0]["remaining"] == 9 * GB
    assert rollover[0]["valid_from"] == "2026-02-05T05:00:00+00:00"

    statement = json.loads(cli("statement", "ben", "--at", "2026-01-20T00:00", "--json"))
    data = statement["units"]["data"]
    assert (data["used"], data["debited_pool"], data["overage"]) == (3 * GB, 2 * GB, 1 * GB)
    assert data["usage_check"] == 0 and data["balance_check"] == 0
    assert json.loads(cli("qos", "ann", "--at", "2026-01-12T00:00", "--json")) == {
        "state": "normal", "max_downlink_kbps": None}


def test_plans_topups_gifts_and_plan_changes(tmp_path):
    cli("init")
    plan = tmp_path / "mini.yaml"
    plan.write_text("id: mini-1gb\nkind: metered\nallowance: {data: 1GB}\n"
                    "overage: {action: block}\n")
    assert json.loads(cli("plan", "load", str(plan), "--json"))["id"] == "mini-1gb"
    ids = [p["id"] for p in json.loads(cli("plan", "list", "--json"))]
    assert "mini-1gb" in ids and "tmobile-go5g" in ids
    assert json.loads(cli("plan", "show", "mini-1gb", "--json"))["allowance"] == {"data": GB}
    cli("account", "create", "solo", "--cycle-day", "1", "--timezone", "UTC",
        "--at", "2026-03-01T00:00")
    cli("line", "create", "--account", "solo", "--msisdn", "+4915100000001", "--id", "s1",
        "--plan", "mini-1gb", "--start", "2026-03-01T00:00")
    cli("line", "create", "--account", "solo", "--msisdn", "+4915100000002", "--id", "s2",
        "--plan", "mini-1gb", "--start", "2026-03-01T00:00")
    cli("topup", "s1", "2GB", "--valid-days", "10", "--at", "2026-03-02T00:00")
    cli("family", "gift", "s1", "s2", "512MB", "--at", "2026-03-03T00:00")
    s2 = json.loads(cli("balance", "s2", "--at", "2026-03-04T00:00", "--json"))
    # s2: its own 1 GB allowance + the 512 MB gift, which keeps the top-up's expiry (12 March).
    assert s2["available"] == {"data": GB + 512 * 1024**2}
    gift = next(b for b in s2["buckets"] if b["kind"] == "gift")
    assert gift["valid_until"] == "2026-03-12T00:00:00+00:00"
    cli("plan", "change", "s1", "tmobile-data-stash-10gb", "--effective", "now",
        "--at", "2026-03-16T12:00")
    s1 = json.loads(cli("balance", "s1", "--at", "2026-03-16T12:00", "--json"))
    allowance = next(b for b in s1["buckets"] if b["kind"] == "allowance")
    # 10 GB prorated over the 15.5 of March's 31 days left: 10 GB * 15.5 / 31 = 5 GB.
    assert allowance["remaining"] == 5 * GB


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("balance", "nobody"), "unknown line 'nobody'"),
        (("usage", "add", "ann", "1GB", "--at", "2026-01-06T00:00", "--event-id", "dup"),
         "duplicate event 'dup'"),
        (("usage", "add", "ann", "1GB", "--at", "2025-12-01T00:00"), "before line 'ann' started"),
        # "--" ends the options, as a shell user writes a value that starts with "-".
        (("usage", "add", "--at", "2026-01-06T00:00", "--", "ann", "-1GB"),
         "'-1GB' is negative"),
        (("usage", "add", "ann", "1GBs", "--at", "2026-01-06T00:00"), "unknown unit"),
        (("usage", "add", "ann", "1GB", "--at", "yesterday"), "--at: 'yesterday' is not"),
        (("plan", "change", "ann", "no-plan", "--effective", "now"), "unknown plan 'no-plan'"),
        (("line", "create", "--account", "nope", "--msisdn", "+14155550199"),
         "unknown account 'nope'"),
        (("line", "create", "--account", "smith", "--msisdn", "12ab"), "not an E.164 number"),
        (("account", "create", "x", "--cycle-day", "32", "--timezone", "UTC"),
         "bill-cycle day 32"),
        (("account", "create", "y", "--cycle-day", "3", "--timezone", "Mars/Base"),
         "unknown timezone 'Mars/Base'"),
        (("family", "gift", "ann", "ben", "1GB", "--at", "2026-01-06T00:00"), "giftable"),
    ],
)
def test_bad_input_exits_2_with_one_line(family, args, message):
    cli("usage", "add", "ann", "1MB", "--at", "2026-01-05T12:00", "--event-id", "dup")
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_duplicate_is_not_counted_again(family):
    reported = ("--at", "2026-01-06T00:00", "--received-at", "2026-01-06T00:05")
    cli("usage", "add", "ann", "1GB", *reported, "--event-id", "once")
    cli("usage", "add", "ann", "1GB", *reported, "--event-id", "once", code=2)
    ann = json.loads(cli("balance", "ann", "--at", "2026-01-07T00:00", "--json"))
    assert ann["cycle"]["used"] == {"data": GB}


def test_usage_reported_after_the_grace_window_is_late(family):
    # Without --received-at the event is reported now (this test's real clock, long after
    # January 2026): its cycle is final, so it is rated at arrival and marked late.
    out = json.loads(cli("usage", "add", "ann", "1GB", "--at", "2026-01-06T00:00", "--json"))
    assert out["late"] is True


def test_a_newer_database_is_refused(tmp_path, monkeypatch):
    from sqlalchemy import create_engine, text

    path = tmp_path / "newer.db"
    monkeypatch.setenv("CARRYOVER_DATABASE_URL", f"sqlite:///{path}")
    cli("init")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'carryover_9999'"))
    engine.dispose()
    from carryover.store.engine import dispose_engines
    dispose_engines()
    out = runner.invoke(app, ["plan", "list"])
    assert out.exit_code == 2
    assert "carryover_9999" in out.output and len(out.output.strip().splitlines()) == 1
