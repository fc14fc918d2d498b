"""Plan versions through the command line (issue 15 defect 3; docs/plan-files.md).

Instants are relative to the real clock: the CLI reads it (it is the edge where the
clock is read), and a plan version's default start is the next cycle boundary
after the load.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .test_cli_operator import GB, cli

NOW = datetime.now(UTC)


def months_ago(n: int) -> datetime:
    year, month = divmod(NOW.year * 12 + NOW.month - 1 - n, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


START = months_ago(2)  # the first of the month two months ago: a closed cycle
MID = START.replace(day=20)
METERED_GO5G = ("id: tmobile-go5g\nname: Not Go5G\nkind: metered\n"
                "allowance: {data: 5.5GB}\noverage: {action: block}\n")


def balance(line: str, at: datetime | None = None) -> dict:
    args = ["balance", line, "--json"] + (["--at", at.isoformat()] if at else [])
    return json.loads(cli(*args))


def test_issue15_defect3_reloading_a_plan_id_does_not_rewrite_history(tmp_path):
    # An unlimited line (T-Mobile Go5G) with 6 GB used in its first cycle. Re-loading
    # the id with a metered 5.5 GB body made its past balance 5.5 GB - 6 GB used and
    # left today's (stored) balance unlimited: past and present disagreed. Now the load
    # is version 2, in force from the next cycle boundary; the past stays unlimited.
    cli("init")
    cli("account", "create", "solo", "--cycle-day", "1", "--timezone", "UTC",
        "--at", START.isoformat())
    cli("line", "create", "--account", "solo", "--msisdn", "+4915100000009", "--id", "u1",
        "--plan", "tmobile-go5g", "--start", START.isoformat())
    cli("usage", "add", "u1", "6GB", "--at", START.replace(day=10).isoformat(),
        "--event-id", "e1")
    past, today = balance("u1", MID), balance("u1")
    assert past["available"] == {"data": None} and today["available"] == {"data": None}

    body = tmp_path / "go5g.yaml"
    body.write_text(METERED_GO5G)
    loaded = json.loads(cli("plan", "load", str(body), "--json"))
    assert (loaded["version"], loaded["added"]) == (2, True)
    listed = {p["id"]: p for p in json.loads(cli("plan", "list", "--json"))}
    assert (listed["tmobile-go5g"]["version"], listed["tmobile-go5g"]["kind"]) == (2, "metered")
    assert listed["travel-5gb-30d"]["version"] == 1
    assert set(loaded["effective"]) == {"next_boundary_after"}

    assert balance("u1", MID) == past  # the past is what it was
    after = balance("u1")
    assert after["available"] == today["available"] == {"data": None}
    assert after["buckets"] == today["buckets"]

    # From the next boundary on the line is granted version 2's allowance.
    nxt = months_ago(-1)
    assert balance("u1", nxt)["available"] == {"data": 5 * GB + GB // 2}


def test_issue15_defect3_init_keeps_the_operators_version_and_says_so(tmp_path):
    cli("init")
    body = tmp_path / "go5g.yaml"
    body.write_text(METERED_GO5G)
    cli("plan", "load", str(body))
    out = cli("init")
    assert "tmobile-go5g" in out and "operator's version 2 stays in force" in out
    shown = json.loads(cli("plan", "show", "tmobile-go5g", "--json"))
    assert shown["kind"] == "metered" and shown["version"] == 2
    v1, v2 = shown["versions"]
    # The preset is not dropped: it is version 1, in force always before version 2.
    assert (v1["version"], v1["source"], v1["effective"]) == (1, "preset", "always")
    assert v1["plan"]["kind"] == "unlimited" and v1["plan"]["name"].startswith("T-Mobile")
    assert (v2["version"], v2["source"], v2["plan"]["allowance"]) == (
        2, "file", {"data": 5 * GB + GB // 2})
    # A second init has nothing new to say about presets already present.
    assert "added preset" not in cli("init")


def test_the_same_plan_again_is_a_no_op_and_a_past_effective_is_refused(tmp_path):
    cli("init")
    body = tmp_path / "mini.yaml"
    body.write_text("id: mini\nallowance: {data: 1GB}\n")
    first = json.loads(cli("plan", "load", str(body), "--json"))
    assert (first["version"], first["added"], first["effective"]) == (1, True, "always")
    # The same plan written differently (1024MB is 1GB) is the same version.
    body.write_text("id: mini\nallowance: {data: 1024MB}\n")
    again = json.loads(cli("plan", "load", str(body), "--json"))
    assert (again["version"], again["added"]) == (1, False)
    assert "unchanged" in cli("plan", "load", str(body))
    body.write_text("id: mini\nallowance: {data: 2GB}\n")
    out = cli("plan", "load", str(body), "--effective", "2020-01-01T00:00", code=2)
    assert "--effective" in out and "in the past" in out
    later = json.loads(cli("plan", "load", str(body), "--effective", "now", "--json"))
    assert later["version"] == 2 and set(later["effective"]) == {"at"}
    assert len(json.loads(cli("plan", "show", "mini", "--json"))["versions"]) == 2
