"""Late usage has one rule (domain/lateness.py): the column form used by ingest agrees
with the one-event form used by the object fold, event by event, and both agree with
the rule as docs/semantics.md states it ("Late usage")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.columnar.state import to_us
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Usage, effective_instant
from carryover.domain.lateness import is_late, late_mask
from carryover.domain.units import Unit

ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Shanghai", "Australia/Lord_Howe"]
START = datetime(2026, 1, 1, tzinfo=UTC)

calendars = st.lists(st.builds(CycleCalendar, st.integers(1, 31), st.sampled_from(ZONES)),
                     min_size=1, max_size=4)
event = st.tuples(st.integers(0, 400 * 86_400), st.integers(0, 80 * 3600),
                  st.integers(0, 3), st.sampled_from([0, 3600, 48 * 3600, 40 * 86_400]))


@settings(max_examples=200, deadline=None)
@given(calendars, st.lists(event, min_size=1, max_size=60))
def test_the_column_rule_is_the_one_event_rule(cals, events):
    at = [START + timedelta(seconds=s) for s, _, _, _ in events]
    received = [a + timedelta(seconds=e[1]) for a, e in zip(at, events, strict=True)]
    which = [c % len(cals) for _, _, c, _ in events]
    grace = [timedelta(seconds=g) for _, _, _, g in events]
    mask = late_mask(np.array([to_us(a) for a in at], dtype=np.int64),
                     np.array([to_us(r) for r in received], dtype=np.int64),
                     np.array(which, dtype=np.int64), cals,
                     np.array([g // timedelta(microseconds=1) for g in grace], dtype=np.int64))
    one = [is_late(a, r, cals[c], g) for a, r, c, g in zip(at, received, which, grace, strict=True)]
    assert mask.tolist() == one


def test_late_means_received_after_the_cycle_end_plus_grace():
    calendar = CycleCalendar(1, "UTC")
    at = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)  # the March cycle ends 1 April 00:00
    grace = timedelta(hours=48)
    assert not is_late(at, datetime(2026, 4, 3, 0, 0, tzinfo=UTC), calendar, grace)
    assert is_late(at, datetime(2026, 4, 3, 0, 0, 1, tzinfo=UTC), calendar, grace)
    late = Usage("e", "L1", at, 1, Unit.DATA, None, datetime(2026, 4, 3, 0, 0, 1, tzinfo=UTC))
    # A late event is rated when it was received, not at its own instant.
    assert effective_instant(late, calendar, grace) == (late.received_at, True)
