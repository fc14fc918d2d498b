"""Pace and forecast: projected use to the end of the cycle, and when high-speed data runs out.

An estimate, always labelled as one. Each local day's expected use is the weekday
profile of the line's last N complete cycles, scaled to this cycle's level (what
its complete days used against what the profile expected of them); without
history it is the mean of this cycle's complete days, weekday-blind, and only once
there are at least MIN_DAYS of them (before that: no forecast, with the reason).
The rest of today counts as the share of the day still to come.

The interval is the point plus or minus two standard deviations of the sum of the
days still to come, each day's variance taken from the profile (days independent),
never below what is already used. `runs_out_at` walks the expected use forward
from `at` until it covers what is left of high-speed data (None: it does not run
out before the cycle ends, or nothing limits it). Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from carryover.domain.advice.profile import Day, LineUsage, Profile, days, flat, profile
from carryover.domain.cycles import CycleCalendar
from carryover.domain.units import format_amount

MIN_DAYS = 3  # complete days of this cycle needed for a forecast without history
SIGMAS = 2


@dataclass(frozen=True, slots=True)
class Pace:
    """Expected use per local day: the profile times this cycle's level."""

    calendar: CycleCalendar
    profile: Profile
    level: float
    method: str

    def expected(self, start: datetime, end: datetime) -> float:
        """Expected bytes over [start, end), a day's share by its seconds."""
        return sum(self.level * self.profile.mean[d.weekday] * _share(d, start, end)
                   for d in days(self.calendar, start, end))

    def variance(self, start: datetime, end: datetime) -> float:
        return sum(self.level ** 2 * self.profile.variance[d.weekday] * _share(d, start, end)
                   for d in days(self.calendar, start, end))

    def runs_out(self, start: datetime, end: datetime, left: int) -> datetime | None:
        """The instant in [start, end) at which expected use reaches `left` bytes."""
        need = float(left)
        for d in days(self.calendar, start, end):
            lo, hi = max(d.start, start), min(d.end, end)
            if hi <= lo:
                continue
            amount = self.level * self.profile.mean[d.weekday] * _share(d, lo, hi)
            if amount >= need and amount > 0:
                return lo + (hi - lo) * (need / amount)
            need -= amount
        return None


def _share(day: Day, start: datetime, end: datetime) -> float:
    lo, hi = max(day.start, start), min(day.end, end)
    return max(0.0, (hi - lo) / (day.end - day.start))


def pace(calendar: CycleCalendar, usage: LineUsage, at: datetime,
         history: list[tuple[datetime, datetime]]) -> Pace | str:
    """This line's pace at `at`, or the reason there is none."""
    start, _ = calendar.cycle_at(at)
    complete = [d for d in days(calendar, start, at) if d.end <= at]
    if history:
        samples = [(d.weekday, usage.between(d.start, d.end))
                   for begin, end in history for d in days(calendar, begin, end)]
        shape = profile(samples)
        level = 1.0
        if len(complete) >= MIN_DAYS:
            expected = sum(shape.mean[d.weekday] for d in complete)
            used = usage.between(start, complete[-1].end)
            if expected > 0:
                level = used / expected
        return Pace(calendar, shape, level, "weekday_profile")
    if len(complete) < MIN_DAYS:
        return (f"no forecast in a cycle's first {MIN_DAYS} days without an earlier "
                f"complete cycle ({len(complete)} complete day"
                f"{'' if len(complete) == 1 else 's'} so far)")
    return Pace(calendar, flat([usage.between(d.start, d.end) for d in complete]), 1.0,
                "this_cycle_pace")


def forecast(calendar: CycleCalendar, usage: LineUsage, at: datetime,
             history: list[tuple[datetime, datetime]],
             left: int | None) -> tuple[dict, Pace | None]:
    """The forecast item for the cycle of `at`; `left`: high-speed bytes left at `at`
    (None: nothing limits them). Returns the item and the pace it used."""
    start, end = calendar.cycle_at(at)
    found = pace(calendar, usage, at, history)
    if isinstance(found, str):
        return {"kind": "no_forecast", "reason": found,
                "text": f"No forecast yet: {found}."}, None
    used = usage.between(start, at, include_end=True)
    rest = found.expected(at, end)
    point = used + round(rest)
    spread = SIGMAS * math.sqrt(found.variance(at, end))
    low = max(used, min(point, math.floor(point - spread)))
    high = max(point, math.ceil(point + spread))
    if left is None:
        runs_out = None
    elif left <= 0:
        runs_out = at
    else:
        runs_out = found.runs_out(at, end, left)
    def local(t):
        return (t.astimezone(calendar.tz).strftime("%Y-%m-%d %H:%M"))
    text = (f"Estimate: about {format_amount(point)} by the end of the cycle "
            f"({format_amount(low)} to {format_amount(high)})")
    if runs_out is None:
        text += ("; high-speed data is not limited" if left is None
                 else "; high-speed data lasts to the end of the cycle")
    elif runs_out == at:
        text += "; no high-speed data is left"
    else:
        text += f"; high-speed data runs out around {local(runs_out)}"
    return {
        "kind": "forecast",
        "method": found.method,
        "used": used,
        "projected_use": point,
        "low": low,
        "high": high,
        "high_speed_left": left,
        "runs_out_at": None if runs_out is None else _iso(runs_out),
        "cycle_end": _iso(end),
        "history_cycles": len(history),
        "text": text + ".",
    }, found


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat()
