"""Billing cycles: where one bill period ends and the next begins.

The rule is docs/semantics.md, "Cycles and rollover at the boundary instant".

An account has a bill-cycle day D (1..31) and an IANA timezone. A cycle starts
at local midnight on day min(D, days in that month) and ends, exclusive, where
the next one starts. Boundaries are computed in local calendar terms and then
converted to UTC, so a DST change never moves a boundary off local midnight.
Where local midnight does not exist (zones that change clocks at 00:00), the
cycle starts at the first instant of that local day.

Every function here takes the instant it reasons about as a parameter; nothing
reads the clock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class CycleError(ValueError):
    """A bill-cycle day or timezone that cannot define cycles."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or a CycleError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CycleError(
            f"unknown timezone {name!r}; use an IANA name such as Europe/Berlin") from exc


def require_aware(at: datetime, what: str = "instant") -> datetime:
    """Refuse naive datetimes: every instant in carryover carries its offset."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} {at.isoformat()} has no timezone offset")
    return at


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of local `day` in `tz`, as a UTC datetime.

    fold=0 interprets a nonexistent wall time with the offset in force before
    the gap, which lands exactly on the transition: the first real instant of
    the day.
    """
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def anchor_day(year: int, month: int, cycle_day: int) -> date:
    """The day a cycle starts in this month: min(D, days in month)."""
    return date(year, month, min(cycle_day, calendar.monthrange(year, month)[1]))


@lru_cache(maxsize=65_536)
def _start_in_month(cycle_day: int, timezone: str, year: int, month: int) -> datetime:
    # Pure and asked for the same few months over and over (every usage event's
    # instant is placed in its cycle): worth remembering.
    return local_midnight(anchor_day(year, month, cycle_day), ZoneInfo(timezone))


@dataclass(frozen=True, slots=True)
class CycleCalendar:
    """The cycles of one account: a bill-cycle day and a timezone."""

    cycle_day: int
    timezone: str
    # The cycle `cycle_at` found last: events come in runs within one cycle, and a
    # hit costs two comparisons instead of two zone conversions and three lookups.
    # Not part of the value (no compare, no hash, no init).
    _last: tuple[datetime, datetime] | None = field(default=None, init=False, compare=False,
                                                    repr=False)

    def __post_init__(self) -> None:
        if (isinstance(self.cycle_day, bool) or not isinstance(self.cycle_day, int)
                or not 1 <= self.cycle_day <= 31):
            raise CycleError(f"bill-cycle day {self.cycle_day!r} is not a day from 1 to 31")
        zone(self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def start_in_month(self, year: int, month: int) -> datetime:
        """The cycle boundary that falls in the given local month (UTC)."""
        return _start_in_month(self.cycle_day, self.timezone, year, month)

    def cycle_at(self, at: datetime) -> tuple[datetime, datetime]:
        """(start, end) in UTC of the cycle containing `at`; end is exclusive."""
        require_aware(at)
        last = self._last
        if last is not None and last[0] <= at < last[1]:
            return last
        local = at.astimezone(self.tz)
        start = self.start_in_month(local.year, local.month)
        if start > at.astimezone(UTC):
            year, month = add_months(local.year, local.month, -1)
            start = self.start_in_month(year, month)
        found = (start, self.next_boundary(start))
        object.__setattr__(self, "_last", found)  # frozen for its value, not this memo
        return found

    def next_boundary(self, boundary: datetime) -> datetime:
        """The boundary after `boundary`, which must itself be a boundary."""
        local = require_aware(boundary, "boundary").astimezone(self.tz)
        # A boundary's local date is its anchor day, except after a gap at midnight, where
        # it is still that date; either way its month identifies it.
        year, month = add_months(local.year, local.month, 1)
        return self.start_in_month(year, month)

    def boundaries(self, after: datetime, until: datetime) -> list[datetime]:
        """Boundaries T with after < T <= until, in order."""
        _, end = self.cycle_at(after)
        out: list[datetime] = []
        while end <= until:
            out.append(end)
            end = self.next_boundary(end)
        return out

    def shift_cycles(self, boundary: datetime, n: int) -> datetime:
        """The boundary n cycles after `boundary` (n >= 0)."""
        for _ in range(n):
            boundary = self.next_boundary(boundary)
        return boundary


def add_calendar_months(at: datetime, months: int, tz: ZoneInfo) -> datetime:
    """`at` plus whole months in local calendar terms (day clamped to the month's end).

    Used for rollover lifetimes such as T-Mobile's "expires 12 months after it is
    made": a deposit made on 31 January 2026 expires on 31 January 2027 local time.
    """
    local = require_aware(at).astimezone(tz)
    year, month = add_months(local.year, local.month, months)
    day = min(local.day, calendar.monthrange(year, month)[1])
    shifted = local.replace(year=year, month=month, day=day, tzinfo=None)
    return shifted.replace(tzinfo=tz).astimezone(UTC)


def add_days(at: datetime, days: int, tz: ZoneInfo) -> datetime:
    """`at` plus whole local days: a 30-day pass bought at 09:00 ends at 09:00 local."""
    local = require_aware(at).astimezone(tz)
    # Naive arithmetic resets fold; keep it so a repeated wall time keeps its occurrence.
    shifted = local.replace(tzinfo=None) + timedelta(days=days)
    return shifted.replace(tzinfo=tz, fold=local.fold).astimezone(UTC)
