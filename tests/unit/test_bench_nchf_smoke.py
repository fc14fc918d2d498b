"""bench/nchf_load.py: its schedule and statistics, and a small real run on SQLite.

The bench drives `carryover serve` over HTTP with an open-loop schedule fixed in
advance and measures latency from each request's scheduled instant; if the
schedule were wrong (overlapping requests of one session, a phase at another
rate) or the percentiles off, its numbers would be too. The smoke run serves a
tiny load (50 sessions, 50 updates/s for 3 s, one worker) and asserts that
every request was answered, the schemas hold and usage was conserved. Speed is
not asserted: that is what the bench itself reports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "nchf_load.py"


@pytest.fixture(scope="module")
def bench():
    path = list(sys.path)  # the script puts bench/ and the repository root in front
    spec = importlib.util.spec_from_file_location("nchf_load_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path[:] = path


def test_updates_are_exactly_rate_per_second(bench) -> None:
    sessions, rate, duration, gap = 40, 20.0, 7.0, 0.5  # 140 updates, 10 lanes
    ops = bench.schedule(sessions, rate, duration, gap)
    assert Counter(op.kind for op in ops) == {"create": 40, "update": 140, "release": 40}
    assert [op.at for op in ops] == sorted(op.at for op in ops)
    updates = [op.at for op in ops if op.kind == "update"]
    # One update every 1/rate s from gap/2 on: every slot used once, none added.
    assert updates == pytest.approx([j / rate + gap / 2 for j in range(140)])


def test_each_session_is_create_updates_release_one_at_a_time(bench) -> None:
    sessions, rate, gap = 40, 20.0, 0.5
    by_session = defaultdict(list)
    for op in bench.schedule(sessions, rate, 7.0, gap):
        by_session[op.session].append(op)
    assert sorted(by_session) == list(range(sessions))
    for ops in by_session.values():
        kinds = [op.kind for op in ops]
        assert kinds[0] == "create" and kinds[-1] == "release"
        assert set(kinds[1:-1]) <= {"update"}
        gaps = [round(b.at - a.at, 9) for a, b in pairwise(ops)]
        if len(ops) > 2:  # half a gap to the first update and after the last, then gap
            assert gaps[0] == gaps[-1] == gap / 2 and set(gaps[1:-1]) <= {gap}
        else:
            assert gaps == [0.0]  # no update: created, then released at once


def test_sessions_start_and_end_all_through_the_run(bench) -> None:
    # 200 lanes of 5 sessions, 4 updates each (20 s of 200 updates/s).
    sessions, rate, duration = 1000, 200.0, 20.0
    ops = bench.schedule(sessions, rate, duration, 1.0)
    assert bench.lanes(sessions, rate, 1.0) == 200

    def per_second(kind: str) -> list[int]:
        counts = Counter(int(op.at) for op in ops if op.kind == kind)
        return [counts[t] for t in range(21)]

    creates, releases = per_second("create"), per_second("release")
    # The first 200 sessions open at once (one per lane), the last 200 close at once;
    # in between sessions open and close at sessions / duration = 50 a second.
    assert creates[0] == 200 + 49 and releases[-1] == 200
    assert set(creates[1:16]) == {50} and set(releases[1:16]) == {50}
    assert sum(creates) == sum(releases) == sessions
    assert Counter(per_second("update")) == {200: 19, 100: 2}


def test_default_schedule_creates_every_session_before_using_it(bench) -> None:
    # 10,000 sessions, 166 of them with no update: created and released at one instant.
    first: dict[int, str] = {}
    last: dict[int, str] = {}
    for op in bench.schedule(10_000, 1000.0, 60.0, 1.0):
        first.setdefault(op.session, op.kind)
        last[op.session] = op.kind
    assert set(first.values()) == {"create"} and set(last.values()) == {"release"}
    assert len(first) == 10_000


def test_the_steady_schedule_ramps_then_holds_the_rate(bench) -> None:
    rate, duration, gap = 20.0, 5.0, 0.5  # 10 sessions, each on its own line
    ops = bench.steady_schedule(rate, duration, gap)
    by_session = defaultdict(list)
    for op in ops:
        by_session[op.session].append(op)
    assert sorted(by_session) == list(range(10))
    creates = sorted(op.at for op in ops if op.kind == "create")
    assert creates == pytest.approx([i * gap / 10 for i in range(10)])  # the ramp
    updates = [op.at for op in ops if op.kind == "update"]
    assert min(updates) >= gap and max(updates) < duration  # all in the steady window
    per_second = Counter(int(at) for at in updates)
    assert [per_second[t] for t in range(1, 5)] == [20, 20, 20, 20]
    for session_ops in by_session.values():
        kinds = [op.kind for op in session_ops]
        assert kinds[0] == "create" and kinds[-1] == "release"
        assert set(kinds[1:-1]) == {"update"}
        gaps = {round(b.at - a.at, 9) for a, b in pairwise(session_ops[:-1])}
        assert gaps == {gap}
        assert round(session_ops[-1].at - session_ops[-2].at, 9) == gap / 2


def test_a_process_groups_cpu_is_counted(bench) -> None:
    group = os.getpgrp()
    before = bench.group_cpu_seconds(group)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert bench.group_cpu_seconds(group) - before >= 0.25
    assert bench.group_cpu_seconds(2**22 + 12345) == 0  # no such group


def test_fewer_updates_than_sessions(bench) -> None:
    ops = bench.schedule(10, 5.0, 1.0, 1.0)  # 5 updates for 10 sessions in 5 lanes
    assert Counter(op.kind for op in ops) == {"create": 10, "update": 5, "release": 10}
    assert bench.lanes(10, 5.0, 1.0) == 5 and bench.lanes(10, 5.0, 100.0) == 10


def test_used_share_is_half_to_all_of_the_grant(bench) -> None:
    shares = [bench.used_share(s, r, 10_000_000) for s in range(200) for r in range(8)]
    assert min(shares) == 5_000_000 and max(shares) == 10_000_000
    assert len(set(shares)) == 51
    assert bench.used_share(3, 2, 0) == 0


def test_percentiles_nearest_rank(bench) -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100 ms
    p = bench.percentiles(list(reversed(values)))
    assert (p["p50_ms"], p["p99_ms"], p["max_ms"], p["mean_ms"]) == (50.0, 99.0, 100.0, 50.5)
    one = bench.percentiles([7.0])
    assert one["p50_ms"] == one["p99_ms"] == one["max_ms"] == 7.0
    assert bench.percentiles([])["p99_ms"] is None
    # 1 slow request in 1,000 stays out of p99; 11 do not.
    assert bench.percentiles([1.0] * 999 + [500.0])["p99_ms"] == 1.0
    assert bench.percentiles([1.0] * 989 + [500.0] * 11)["p99_ms"] == 500.0


def test_op_stats_rate_and_slowest_second(bench) -> None:
    stats = bench.OpStats(scheduled=4, ok=4, first_at=10.0, last_done=12.0)
    stats.done_per_second.update({0: 1, 1: 3, 2: 5, 3: 1})
    summary = stats.summary()
    assert summary["rate"] == 2.0 and summary["slowest_second"] == 3
    assert bench.OpStats(scheduled=3).summary()["rate"] == 0.0


def test_conservation_with_unanswered_reports(bench) -> None:
    explained = bench.explained
    assert explained((100, 2), (100, 2), [])
    assert not explained((101, 2), (100, 2), [])  # one byte too many
    assert not explained((100, 3), (100, 2), [])  # an event of 0 bytes too many
    assert not explained((90, 2), (100, 2), [])  # bytes lost
    # Each unanswered container is stored whole or not at all.
    assert explained((100, 2), (100, 2), [30, 50])
    assert explained((130, 3), (100, 2), [30, 50])
    assert explained((180, 4), (100, 2), [30, 50])
    assert not explained((120, 3), (100, 2), [30, 50])  # part of one
    assert not explained((130, 4), (100, 2), [30, 50])
    ledger = bench.Ledger()
    ledger.answered("i1", 40)
    ledger.unanswered("i1", 7)
    ledger.unanswered("i2", None)  # a create: it reported nothing
    assert (ledger.used_bytes, ledger.containers, ledger.in_doubt) == (40, 1, {"i1": [7]})


def test_request_bodies_follow_the_spec(bench) -> None:
    from tests.nchf_schema import validate

    session = bench.Session("001010000000007", ref="abc", sequence=0, report=0, grant=0)
    create, used = bench.request_body(session, 7, "create")
    assert used is None and create["subscriberIdentifier"] == "imsi-001010000000007"
    validate("ChargingDataRequest", create)
    session.sequence, session.grant = 1, 10_000_000
    update, used = bench.request_body(session, 7, "update")
    container = update["multipleUnitUsage"][0]["usedUnitContainer"][0]
    assert container["totalVolume"] == used <= session.grant
    assert "subscriberIdentifier" not in update
    validate("ChargingDataRequest", update)
    release, _ = bench.request_body(session, 7, "release")
    assert "requestedUnit" not in release["multipleUnitUsage"][0]
    validate("ChargingDataRequest", release)


def test_smoke_run_on_sqlite(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--backend", "sqlite", "--sessions", "50", "--duration",
         "3", "--rate", "50", "--workers", "1", "--workdir", str(tmp_path / "work"), "--json",
         # Correctness, not speed: a busy machine may be slow, but must not lose requests.
         "--timeout", "60", "--grace", "120"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert result["errors"] == [] and result["consistent"] is True
    sqlite = result["sqlite"]
    ops = sqlite["ops"]
    assert {k: (ops[k]["count"], ops[k]["ok"], ops[k]["errors"]) for k in ops} == {
        "create": (50, 50, 0), "update": (150, 150, 0), "release": (50, 50, 0)}
    for op in ops.values():
        assert 0 < op["p50_ms"] <= op["p99_ms"] <= op["max_ms"]
        assert 0 < op["service"]["p50"] <= op["service"]["max"] <= op["max_ms"]
    cons = sqlite["conservation"]
    assert cons["ok"] is True, cons["problems"]
    # One usedUnitContainer per update and per release, each stored exactly once.
    assert cons["reported_events"] == cons["stored_events"] == 150 + 50
    assert cons["reported_bytes"] == cons["stored_bytes"] == sqlite["used_bytes"] > 0
    assert cons["in_doubt_events"] == cons["in_doubt_bytes"] == cons["lines_wrong"] == 0
    assert cons["ledger"]["lines_checked"] == 50 and cons["ledger"]["buckets_checked"] >= 50
    schema = sqlite["schema"]
    assert schema["problem_count"] == 0, schema["problems"]
    assert {"create request", "create response", "update request", "update response",
            "release request"} <= set(schema["by_kind"])
    assert "postgresql" not in result  # --backend sqlite: not run, not reported
    assert {t["target"] for t in result["targets"]} == {
        "updates/s sustained", "update p99 (ms)", "errors (requests + schema)", "conservation",
        "server CPU per update (ms)"}
    # The serve processes worked: some CPU, well under the run's wall time times nproc.
    assert 0 < sqlite["server_cpu_seconds"] < sqlite["wall_seconds"] * os.cpu_count()
    assert sqlite["server_cpu_ms_per_update"] == pytest.approx(
        1000 * sqlite["server_cpu_seconds"] / 150)


def test_smoke_run_against_the_null_server(tmp_path: Path) -> None:
    """The floor: the same client and schedule against a server that answers at once."""
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--null-server", "--sessions", "20", "--duration", "2",
         "--rate", "20", "--workers", "1", "--workdir", str(tmp_path / "work"), "--json",
         "--timeout", "60", "--grace", "120"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert result["errors"] == [] and result["consistent"] is True
    assert "sqlite" not in result and "postgresql" not in result  # no carryover at all
    null = result["null"]
    ops = null["ops"]
    assert {k: (ops[k]["ok"], ops[k]["errors"]) for k in ops} == {
        "create": (20, 0), "update": (40, 0), "release": (20, 0)}
    assert "conservation" not in null
    assert null["client_cpu"] == min(os.sched_getaffinity(0))  # pinned by default
    assert null["schema"]["problem_count"] == 0, null["schema"]["problems"]
    assert result["targets"] == []  # the targets are carryover's, on PostgreSQL


def test_client_cpu_must_be_one_the_process_may_use(bench) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--client-cpu", "4096"])
    assert bench.parse_args(["--client-cpu", "none"]).client_cpu is None
