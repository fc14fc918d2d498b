"""What each portal page reads: one read of the line's book per page, like a balance read.

`overview` is the line's meters (domain.portal_view) with its QoS decision, its
cycle and the grace window: usage of a cycle may still arrive until its end plus
the account's grace, so until then a balance can still change for the past (the
answer to "my rollover did not show up right away"). `usage` is the cycle's
daily use with the advice forecast; `statement` is services.ledger.operations'.
Instants come back aware (UTC); the pages show them in the account's zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carryover.domain import advice
from carryover.domain.notices import EXPIRING_WITHIN
from carryover.domain.portal_view import daily_use, meters
from carryover.domain.units import Unit
from carryover.domain.views import position, qos
from carryover.services.ledger.operations import read_book


def overview(uow, line: str, at: datetime) -> dict:
    def view(uow, book, row, t):
        state = position(book, t)
        start, end = state.calendar.cycle_at(t)
        found = meters(state, row.id, t)
        soon = t + EXPIRING_WITHIN
        return {
            "line": row.id, "at": t, "timezone": row.timezone, "meters": found,
            "qos": qos(state, row.id, t), "cycle_start": start, "cycle_end": end,
            "late_until": end + state.grace,
            "previous_late_until": start + state.grace if t < start + state.grace else None,
            "expiring": [m for m in found if m["kind"] == "rollover"
                         and m["valid_until"] is not None and m["valid_until"] <= soon],
            "member": book.lines[row.id].member,
        }
    return read_book(uow, line, at, view)


def usage(uow, line: str, at: datetime, previous_cycles: int = 3) -> dict:
    def view(uow, book, row, t):
        state = position(book, t)
        start, end = state.calendar.cycle_at(t)
        opened = book.lines[row.id].opened_at
        cycles = []
        cursor = start
        while len(cycles) < previous_cycles and cursor > opened:
            earlier = state.calendar.cycle_at(cursor - timedelta(microseconds=1))
            cycles.append(earlier)
            cursor = earlier[0]
        history = list(book.ordered_inputs())
        previous = [{"start": s, "end": e, "used": sum(
            d for _, d in daily_use(history, row.id, Unit.DATA, s, e, ZoneInfo("UTC")))}
            for s, e in cycles]
        forecast = advice.advise(book, history, row.id, t, advice.DEFAULT_CYCLES)["forecast"]
        return {"line": row.id, "at": t, "timezone": row.timezone, "cycle_start": start,
                "cycle_end": end, "forecast": forecast,
                # The days up to today; the chart spans the whole cycle.
                "days": daily_use(history, row.id, Unit.DATA, start, min(end, t),
                                  ZoneInfo(row.timezone)),
                "cycle_days": len(daily_use((), row.id, Unit.DATA, start, end,
                                            ZoneInfo(row.timezone))),
                "previous": previous}
    return read_book(uow, line, at, view)
