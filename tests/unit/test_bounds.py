"""The amount bounds where input enters and the rating core's exactness up to them.

docs/semantics.md, "Bounds": one event at most 2^50, a bucket at most 2^60, a
stored total at most 2^62; int64 arithmetic in `rating.drain` never wraps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.adapters.scenario_file import ScenarioError, parse_scenario
from carryover.domain import bounds
from carryover.domain.bounds import MAX_BUCKET, MAX_EVENT, MAX_TOTAL, BoundError
from carryover.domain.plans import PlanError, plan_from_mapping
from carryover.domain.rating import drain, drain_loop

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", [-1, MAX_EVENT + 1, 2**63 - 1, 10**18 - 1, True, 1.5])
def test_an_event_past_its_bound_is_refused_naming_field_and_bound(value) -> None:
    with pytest.raises(BoundError) as caught:
        bounds.check_event("bytes", value)
    assert str(caught.value).startswith("bytes: ")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        assert "2^50 (1,125,899,906,842,624)" in str(caught.value)


def test_the_bounds_themselves_are_accepted() -> None:
    assert bounds.check_event("bytes", MAX_EVENT) == MAX_EVENT
    assert bounds.check_bucket("cap", MAX_BUCKET) == MAX_BUCKET
    assert bounds.total_after("used", MAX_TOTAL - 5, 5) == MAX_TOTAL
    with pytest.raises(BoundError, match=r"past 2\^62"):
        bounds.total_after("used", MAX_TOTAL - 5, 6)
    with pytest.raises(BoundError, match=r"2\^60"):
        bounds.check_bucket("cap", MAX_BUCKET + 1)


def _queues(draw, runs):
    sizes = [draw(st.lists(st.integers(0, MAX_BUCKET), max_size=6)) for _ in range(runs)]
    return sizes


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_drain_equals_the_greedy_loop_up_to_the_bounds(data) -> None:
    runs = data.draw(st.integers(1, 5))
    demands = [data.draw(st.integers(0, MAX_TOTAL)) for _ in range(runs)]
    queues = _queues(data.draw, runs)
    ptr = np.cumsum([0, *map(len, queues)])
    left = np.array([x for q in queues for x in q], dtype=np.int64)
    got = drain(np.array(demands, dtype=np.int64), ptr, left)
    debits, overage = drain_loop(demands, queues)
    assert got.debit.tolist() == [x for d in debits for x in d]
    assert got.overage.tolist() == overage


def test_drain_with_many_full_buckets_does_not_wrap() -> None:
    # 64 runs x 16 buckets of 2^60 with demands of 2^62: the entries laid end to end
    # add up to 2^70, far past int64; the result must still be the greedy loop's.
    queues = [[MAX_BUCKET] * 16 for _ in range(64)]
    demands = [MAX_TOTAL - r for r in range(64)]
    ptr = np.cumsum([0, *map(len, queues)])
    left = np.full(16 * 64, MAX_BUCKET, dtype=np.int64)
    got = drain(np.array(demands, dtype=np.int64), ptr, left)
    debits, overage = drain_loop(demands, queues)
    assert got.debit.tolist() == [x for d in debits for x in d]
    assert got.overage.tolist() == overage == [0] * 64
    with pytest.raises(ValueError, match="demand"):
        drain(np.array([MAX_TOTAL + 1]), np.array([0, 1]), np.array([1]))


def test_plan_amounts_past_a_bucket_are_refused_with_their_field() -> None:
    body = {"id": "huge", "allowance": {"data": f"{2**61}B", "voice": "10min"},
            "rollover": {"stash_cap": f"{2**61}B"}}
    with pytest.raises(PlanError) as caught:
        plan_from_mapping(body)
    where = [p.field for p in caught.value.problems]
    assert where == ["allowance.data", "rollover.stash_cap"]
    assert all("2^60" in p.message for p in caught.value.problems)
    assert plan_from_mapping({"id": "big", "allowance": {"data": f"{MAX_BUCKET}B"}})


def test_scenario_amounts_and_instants_out_of_bounds_are_refused() -> None:
    text = f"""
timezone: UTC
bill_cycle_day: 1
start: 2026-01-01T00:00
lines: {{a: {{plan: tmobile-data-stash-10gb}}}}
events:
  - {{at: 2026-01-02T00:00, usage: {2**63 - 1}B}}
  - {{at: 2026-01-03T00:00, topup: {MAX_EVENT + 1}B, valid_days: 3}}
  - {{at: 2026-01-04T00:00, usage: {MAX_EVENT}B}}
  - {{at: 9999-12-01T00:00, check: true}}
  - {{at: 0001-01-01T00:00, check: true}}
"""
    from carryover.plan_files import load_presets
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", load_presets())
    lines = caught.value.lines
    assert [line.split(": ")[1] for line in lines] == [
        "events[0].usage", "events[1].topup", "events[3].at", "events[4].at"]
    assert "2^50" in lines[0] and "2^50" in lines[1]


def test_write_and_read_windows() -> None:
    opened = NOW - timedelta(days=30)
    assert bounds.check_write_instant("at", NOW + timedelta(minutes=4), NOW, opened) is not None
    with pytest.raises(BoundError, match="in the future"):
        bounds.check_write_instant("at", NOW + timedelta(minutes=6), NOW, opened)
    with pytest.raises(BoundError, match="before the line started"):
        bounds.check_write_instant("at", opened - timedelta(seconds=1), NOW, opened)
    with pytest.raises(BoundError, match="before 1970"):
        bounds.check_write_instant("start", datetime(1, 1, 1, tzinfo=UTC), NOW)
    assert bounds.check_read_instant("at", NOW + timedelta(days=1000), NOW, opened)
    with pytest.raises(BoundError, match="days ahead"):
        bounds.check_read_instant("at", datetime(9999, 12, 1, tzinfo=UTC), NOW, opened)
