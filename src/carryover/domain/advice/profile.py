"""A line's usage laid out by local day: the raw material of every estimate.

Advice looks back over the last N *complete* cycles (cycles the line was open for
from start to end, before the cycle of `at`) and at the cycle of `at` itself.
Usage is placed at its effective instant (the instant the fold rates it, late
usage at its arrival), so the days here add up to the fold's own counters.

The weekday profile is, per local weekday (Monday 0 .. Sunday 6), the mean and
the variance of a day's usage over the days it is built from. Pure: instants and
inputs come in as parameters.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from carryover.domain.cycles import CycleCalendar, local_midnight
from carryover.domain.inputs import DEFAULT_GRACE, Input, Usage, effective_instant
from carryover.domain.units import Unit


class UsagePoint(NamedTuple):
    """One usage event where the fold rates it; tuples sort by (instant, id)."""

    at: datetime  # effective instant
    id: str
    amount: int
    rating_group: str | None = None


@dataclass(frozen=True, slots=True)
class Day:
    start: datetime
    end: datetime
    weekday: int


@dataclass(frozen=True, slots=True)
class Profile:
    """Mean and variance of a day's usage per weekday, and how many days built it."""

    mean: tuple[float, ...]  # 7 values, bytes per day
    variance: tuple[float, ...]
    days: int


class LineUsage:
    """One line's data usage in effective-instant order, with sums over intervals."""

    def __init__(self, points: Sequence[UsagePoint]) -> None:
        self.points = list(points)
        self.instants = [p.at for p in self.points]
        self.cumulative = [0]
        for p in self.points:
            self.cumulative.append(self.cumulative[-1] + p.amount)

    def between(self, start: datetime, end: datetime, include_end: bool = False) -> int:
        """Bytes used with start <= effective instant < end (<= end with include_end)."""
        lo = bisect_left(self.instants, start)
        hi = (bisect_right if include_end else bisect_left)(self.instants, end)
        return self.cumulative[max(hi, lo)] - self.cumulative[lo]

    def slice(self, start: datetime, end: datetime) -> list[UsagePoint]:
        return self.points[bisect_left(self.instants, start):bisect_left(self.instants, end)]


def line_usage(inputs: Iterable[Input], line: str, calendar: CycleCalendar,
               grace: timedelta = DEFAULT_GRACE, unit: Unit = Unit.DATA) -> LineUsage:
    """The line's usage events of `unit`, placed and ordered as the fold rates them."""
    return usage_by_unit(inputs, line, calendar, grace).get(unit, LineUsage([]))


def usage_by_unit(inputs: Iterable[Input], line: str, calendar: CycleCalendar,
                  grace: timedelta = DEFAULT_GRACE) -> dict[Unit, LineUsage]:
    """The line's usage events per unit, placed and ordered as the fold rates them."""
    points: dict[Unit, list[UsagePoint]] = {}
    for item in inputs:
        if type(item) is Usage and item.line == line:
            # Only a late report can move an event off its own instant.
            at = item.at if item.received_at is None else effective_instant(
                item, calendar, grace)[0]
            points.setdefault(item.unit, []).append(
                UsagePoint(at, item.id, item.amount, item.rating_group))
    out = {}
    for unit in sorted(points, key=list(Unit).index):
        points[unit].sort()
        out[unit] = LineUsage(points[unit])
    return out


def complete_cycles(calendar: CycleCalendar, opened_at: datetime, at: datetime,
                    n: int) -> list[tuple[datetime, datetime]]:
    """Up to n cycles before the cycle of `at` that the line was open for in full, oldest first."""
    start, _ = calendar.cycle_at(at)
    out: list[tuple[datetime, datetime]] = []
    end = start
    while len(out) < n:
        begin, _ = calendar.cycle_at(end - timedelta(microseconds=1))
        if begin < opened_at:
            break
        out.append((begin, end))
        end = begin
    return out[::-1]


def days(calendar: CycleCalendar, start: datetime, end: datetime) -> list[Day]:
    """The local days that meet [start, end), each whole (a cycle starts at local midnight)."""
    tz = calendar.tz
    out = []
    day = start.astimezone(tz).date()
    while True:
        begin = local_midnight(day, tz)
        if begin >= end:
            break
        nxt = day + timedelta(days=1)
        out.append(Day(begin, local_midnight(nxt, tz), day.weekday()))
        day = nxt
    return out


def profile(samples: Sequence[tuple[int, int]]) -> Profile:
    """The weekday profile of (weekday, bytes that day) samples; a weekday without a
    sample takes the mean and variance of all samples."""
    if not samples:
        return Profile((0.0,) * 7, (0.0,) * 7, 0)
    every = [float(v) for _, v in samples]
    overall = sum(every) / len(every)
    overall_var = sum((v - overall) ** 2 for v in every) / len(every)
    mean, var = [], []
    for weekday in range(7):
        values = [float(v) for w, v in samples if w == weekday]
        if not values:
            mean.append(overall)
            var.append(overall_var)
            continue
        m = sum(values) / len(values)
        mean.append(m)
        var.append(sum((v - m) ** 2 for v in values) / len(values))
    return Profile(tuple(mean), tuple(var), len(samples))


def flat(samples: Sequence[int]) -> Profile:
    """A profile that ignores the weekday (too few days to tell weekdays apart)."""
    p = profile([(0, v) for v in samples])
    return Profile((p.mean[0],) * 7, (p.variance[0],) * 7, p.days)
