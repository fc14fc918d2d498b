"""Late usage: an event that reaches us after its cycle is over and its grace has passed.

The rule is docs/semantics.md, "Late usage": an event received after its
cycle's end plus the account's grace is rated at the instant it was received
(in the cycle then open), not at its own; within the grace it is rated in its
own cycle, correcting that cycle's rollover. `is_late` is the rule for one
event (the object fold, through inputs.effective_instant); `late_mask` is the
same rule for columns of events (the ingest path), and tests hold the two equal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from carryover.domain.columnar.state import I64, from_us, to_us
from carryover.domain.cycles import CycleCalendar


def is_late(at: datetime, received_at: datetime, calendar: CycleCalendar,
            grace: timedelta) -> bool:
    _, cycle_end = calendar.cycle_at(at)
    return received_at > cycle_end + grace


def late_mask(at: np.ndarray, received: np.ndarray, calendar_of: np.ndarray,
              calendars: list[CycleCalendar], grace_us: np.ndarray) -> np.ndarray:
    """`is_late` of each event: instants in microseconds, `calendars[calendar_of[i]]`
    and `grace_us[i]` the calendar and grace of event i's account.

    Accounts share a handful of calendars (bill-cycle day, zone), so boundaries are
    computed once per calendar and looked up with searchsorted."""
    late = np.zeros(len(at), dtype=bool)
    for c in np.unique(calendar_of).tolist():
        mine = np.flatnonzero(calendar_of == c)
        calendar = calendars[c]
        _, end = calendar.cycle_at(from_us(int(at[mine].min())))
        bounds = [end]
        top = int(at[mine].max())
        while to_us(bounds[-1]) <= top:
            bounds.append(calendar.next_boundary(bounds[-1]))
        ends = np.array([to_us(b) for b in bounds], dtype=I64)
        cycle_end = ends[np.searchsorted(ends, at[mine], side="right")]
        late[mine] = received[mine] > cycle_end + grace_us[mine]
    return late
