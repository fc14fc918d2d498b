"""Unit tests for carryover.domain.cycles.

The rule is docs/semantics.md, "Cycles and rollover at the boundary instant".

Every expected instant is derived by hand in a comment: local wall time minus the
UTC offset in force (EST -5, EDT -4, CET +1, CEST +2, Chile -4 winter / -3 summer).
Calendar facts used: 2026-01-01 is a Thursday, so 2026-02-01 and 2026-03-01 are
Sundays; US DST starts the 2nd Sunday of March (2026-03-08) and ends the 1st
Sunday of November (Mar 1 + 245 days, 245 = 35 * 7, so 2026-11-01 is a Sunday);
EU DST runs from the last Sunday of March (2026-03-29) to the last Sunday of
October (2026-10-25). 2026 and 2029 are not leap years, 2028 is.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.cycles import (
    CycleCalendar,
    CycleError,
    add_calendar_months,
    add_days,
    local_midnight,
    zone,
)

US = timedelta(microseconds=1)
H = timedelta(hours=1)
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def midnight_exists(day: date, tz: ZoneInfo) -> bool:
    """True when local 00:00 of `day` is a real wall time in `tz` (checked with zoneinfo)."""
    wall = datetime.combine(day, time(0), tzinfo=tz)
    back = wall.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


def assert_boundary(cal: CycleCalendar, t: datetime) -> None:
    """`t` is a UTC instant that starts local day min(D, days in month) in the account zone."""
    tz = ZoneInfo(cal.timezone)
    assert t.utcoffset() == timedelta(0)
    local = t.astimezone(tz)
    assert local.day == min(cal.cycle_day, calendar.monthrange(local.year, local.month)[1])
    # t is the first instant of its local day: one microsecond earlier is the day before.
    assert (t - US).astimezone(tz).date() == local.date() - timedelta(days=1)
    if midnight_exists(local.date(), tz):
        assert local.time() == time(0)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("day", [0, 32, -1, 100])
def test_invalid_cycle_day(day: int) -> None:
    with pytest.raises(CycleError, match=str(day)):
        CycleCalendar(day, "UTC")


@pytest.mark.parametrize("day", ["15", 1.5, None])
def test_cycle_day_must_be_an_int(day: object) -> None:
    with pytest.raises(CycleError):
        CycleCalendar(day, "UTC")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Atlantis", "not a zone", ""])
def test_unknown_zone(name: str) -> None:
    with pytest.raises(CycleError):
        CycleCalendar(1, name)
    with pytest.raises(CycleError):
        zone(name)


def test_zone_and_error_types() -> None:
    assert zone("Europe/Berlin") == BERLIN
    assert issubclass(CycleError, ValueError)


@pytest.mark.parametrize("day", [1, 15, 28, 29, 30, 31])
def test_valid_cycle_days(day: int) -> None:
    assert CycleCalendar(day, "Europe/Berlin").cycle_day == day


# --------------------------------------------------------------------------- naive instants


def test_naive_instants_are_rejected() -> None:
    cal = CycleCalendar(1, "America/New_York")
    naive = datetime(2026, 3, 8, 12, 0)
    with pytest.raises(ValueError, match="no timezone"):
        cal.cycle_at(naive)
    with pytest.raises(ValueError, match="no timezone"):
        cal.next_boundary(naive)
    with pytest.raises(ValueError, match="no timezone"):
        cal.shift_cycles(naive, 1)
    with pytest.raises(ValueError, match="no timezone"):
        cal.boundaries(naive, utc(2027, 1, 1))
    with pytest.raises((TypeError, ValueError)):
        cal.boundaries(utc(2026, 1, 1), naive)
    with pytest.raises(ValueError, match="no timezone"):
        add_days(naive, 1, NY)
    with pytest.raises(ValueError, match="no timezone"):
        add_calendar_months(naive, 1, NY)


# --------------------------------------------------------------------------- short months


def test_day_31_in_february_2026_starts_on_the_28th() -> None:
    cal = CycleCalendar(31, "UTC")
    # Feb 2026 has 28 days: min(31, 28) = 28. Next: March has 31 days -> Mar 31.
    assert cal.cycle_at(utc(2026, 3, 10, 12)) == (utc(2026, 2, 28), utc(2026, 3, 31))
    # Before Feb 28 we are in the cycle that started Jan 31 (January has 31 days).
    assert cal.cycle_at(utc(2026, 2, 15)) == (utc(2026, 1, 31), utc(2026, 2, 28))
    assert cal.cycle_at(utc(2026, 2, 28) - US) == (utc(2026, 1, 31), utc(2026, 2, 28))
    assert cal.cycle_at(utc(2026, 2, 28)) == (utc(2026, 2, 28), utc(2026, 3, 31))


def test_day_31_in_april_starts_on_the_30th() -> None:
    cal = CycleCalendar(31, "UTC")
    # April has 30 days: min(31, 30) = 30; May has 31 -> May 31.
    start, end = cal.cycle_at(utc(2026, 4, 30, 12))
    assert (start, end) == (utc(2026, 4, 30), utc(2026, 5, 31))
    # Apr 30 -> May 31 is 31 days = 31 * 24 = 744 hours.
    assert end - start == timedelta(hours=744)
    # Mar 31 -> Apr 30 is 30 days.
    start, end = cal.cycle_at(utc(2026, 4, 29, 23, 59, 59, 999999))
    assert (start, end) == (utc(2026, 3, 31), utc(2026, 4, 30))
    assert end - start == timedelta(days=30)


def test_day_31_in_february_in_berlin_with_dst_inside() -> None:
    cal = CycleCalendar(31, "Europe/Berlin")
    start, end = cal.cycle_at(utc(2026, 3, 15, 12))
    # Feb 28 00:00 CET (+1) = Feb 27 23:00Z; Mar 31 00:00 CEST (+2, DST since Mar 29)
    # = Mar 30 22:00Z.
    assert start == utc(2026, 2, 27, 23)
    assert end == utc(2026, 3, 30, 22)
    # Feb 28 -> Mar 31 = 31 days; DST removed one hour: 31 * 24 - 1 = 743 hours.
    assert end - start == timedelta(hours=743)
    # The previous one started Jan 31 00:00 CET = Jan 30 23:00Z.
    assert cal.cycle_at(start - US) == (utc(2026, 1, 30, 23), start)


@pytest.mark.parametrize(
    ("day", "end_day", "previous_days"),
    [
        # Feb 2028 has 29 days, so D = 29, 30 and 31 all start on Feb 29 (min(D, 29)).
        # The cycle ends on Mar D; the previous one started on Jan D:
        # Jan 29 -> Feb 29 = 2 + 29 = 31 days, Jan 30 -> 1 + 29 = 30, Jan 31 -> 0 + 29 = 29.
        (29, 29, 31),
        (30, 30, 30),
        (31, 31, 29),
    ],
)
def test_leap_february_2028(day: int, end_day: int, previous_days: int) -> None:
    cal = CycleCalendar(day, "UTC")
    feb29 = utc(2028, 2, 29)
    start, end = cal.cycle_at(utc(2028, 3, 1))
    assert start == feb29
    assert end == utc(2028, 3, end_day)
    # Feb 29 -> Mar D is D days (Feb 29 -> Mar 1 is one day, then D - 1 more).
    assert end - start == timedelta(days=day)
    before = cal.cycle_at(utc(2028, 2, 28, 23, 59, 59, 999999))
    assert before == (utc(2028, 1, day), feb29)
    assert before[1] - before[0] == timedelta(days=previous_days)


@pytest.mark.parametrize("day", [29, 30, 31])
def test_non_leap_february_2029(day: int) -> None:
    # Feb 2029 has 28 days: min(D, 28) = 28 for D = 29, 30, 31.
    cal = CycleCalendar(day, "UTC")
    assert cal.cycle_at(utc(2029, 3, 1)) == (utc(2029, 2, 28), utc(2029, 3, day))


def test_day_1_and_year_end() -> None:
    cal = CycleCalendar(1, "UTC")
    assert cal.cycle_at(utc(2026, 12, 31, 23, 59, 59, 999999)) == (
        utc(2026, 12, 1),
        utc(2027, 1, 1),
    )
    assert cal.cycle_at(utc(2027, 1, 1)) == (utc(2027, 1, 1), utc(2027, 2, 1))
    assert cal.cycle_at(utc(2027, 1, 15)) == (utc(2027, 1, 1), utc(2027, 2, 1))


def test_day_15_mid_month() -> None:
    cal = CycleCalendar(15, "UTC")
    assert cal.cycle_at(utc(2026, 1, 14)) == (utc(2025, 12, 15), utc(2026, 1, 15))
    assert cal.cycle_at(utc(2026, 1, 15)) == (utc(2026, 1, 15), utc(2026, 2, 15))


def test_cycle_follows_the_account_zone_not_utc() -> None:
    cal = CycleCalendar(1, "America/New_York")
    # 2026-12-01 03:00Z is Nov 30 22:00 EST (-5): still the November cycle.
    # Nov 1 00:00 EDT (-4) = 04:00Z; Dec 1 00:00 EST (-5) = 05:00Z.
    assert cal.cycle_at(utc(2026, 12, 1, 3)) == (utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))


def test_instant_given_in_another_zone() -> None:
    cal = CycleCalendar(31, "UTC")
    # 2026-03-10 09:00 in Tokyo (+9) = Mar 10 00:00Z: in the Feb 28 -> Mar 31 cycle.
    at = datetime(2026, 3, 10, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    start, end = cal.cycle_at(at)
    assert (start, end) == (utc(2026, 2, 28), utc(2026, 3, 31))
    assert start.utcoffset() == end.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("zone_name", "day", "start", "end", "start_offset", "end_offset", "days", "dst_hours"),
    [
        # New York, spring forward at 02:00 on 2026-03-08, inside the Mar 8 cycle:
        # Mar 8 00:00 EST = 05:00Z; Apr 8 00:00 EDT = 04:00Z; 31 days, 31*24 - 1 = 743 h.
        ("America/New_York", 8, utc(2026, 3, 8, 5), utc(2026, 4, 8, 4), -5, -4, 31, -1),
        # The change on the cycle's last day: Feb 9 00:00 EST = 05:00Z;
        # Mar 9 00:00 EDT = 04:00Z; 28 days, 28*24 - 1 = 671 h.
        ("America/New_York", 9, utc(2026, 2, 9, 5), utc(2026, 3, 9, 4), -5, -4, 28, -1),
        # New York, fall back at 02:00 on 2026-11-01: Nov 1 00:00 EDT = 04:00Z;
        # Dec 1 00:00 EST = 05:00Z; 30 days, 30*24 + 1 = 721 h.
        ("America/New_York", 1, utc(2026, 11, 1, 4), utc(2026, 12, 1, 5), -4, -5, 30, 1),
        # Oct 2 00:00 EDT = 04:00Z; Nov 2 00:00 EST = 05:00Z; 31 days, 31*24 + 1 = 745 h.
        ("America/New_York", 2, utc(2026, 10, 2, 4), utc(2026, 11, 2, 5), -4, -5, 31, 1),
        # Berlin, spring forward on 2026-03-29: Mar 29 00:00 CET (+1) = Mar 28 23:00Z;
        # Apr 29 00:00 CEST (+2) = Apr 28 22:00Z; 31 days, 31*24 - 1 = 743 h.
        ("Europe/Berlin", 29, utc(2026, 3, 28, 23), utc(2026, 4, 28, 22), 1, 2, 31, -1),
        # Berlin, fall back on 2026-10-25: Oct 25 00:00 CEST = Oct 24 22:00Z;
        # Nov 25 00:00 CET = Nov 24 23:00Z; 31 days, 31*24 + 1 = 745 h.
        ("Europe/Berlin", 25, utc(2026, 10, 24, 22), utc(2026, 11, 24, 23), 2, 1, 31, 1),
    ],
)
def test_dst_cycles_keep_local_midnight(
    zone_name: str,
    day: int,
    start: datetime,
    end: datetime,
    start_offset: int,
    end_offset: int,
    days: int,
    dst_hours: int,
) -> None:
    cal = CycleCalendar(day, zone_name)
    tz = ZoneInfo(zone_name)
    assert cal.cycle_at(start) == (start, end)
    assert cal.cycle_at(start + timedelta(days=3)) == (start, end)
    assert cal.cycle_at(end - US) == (start, end)
    assert cal.cycle_at(end)[0] == end
    assert cal.cycle_at(start - US)[1] == start
    for t in (start, end):
        local = t.astimezone(tz)
        assert local.time() == time(0)
        assert_boundary(cal, t)
    # The UTC offset differs at the two ends of the cycle ...
    assert start.astimezone(tz).utcoffset() == timedelta(hours=start_offset)
    assert end.astimezone(tz).utcoffset() == timedelta(hours=end_offset)
    # ... and the cycle is that many hours shorter or longer than days * 24.
    assert end - start == timedelta(hours=days * 24 + dst_hours)
    assert cal.next_boundary(start) == end


def test_cycle_without_dst_inside_is_whole_days() -> None:
    cal = CycleCalendar(8, "America/New_York")
    # Feb 8 00:00 EST = 05:00Z; Mar 8 00:00 EST = 05:00Z (the change is at 02:00, after
    # the boundary): 28 days * 24 = 672 hours exactly.
    start, end = cal.cycle_at(utc(2026, 2, 20))
    assert (start, end) == (utc(2026, 2, 8, 5), utc(2026, 3, 8, 5))
    assert end - start == timedelta(hours=672)


def test_boundary_instant_belongs_to_the_new_cycle() -> None:
    cal = CycleCalendar(29, "Europe/Berlin")
    boundary = utc(2026, 3, 28, 23)  # Mar 29 00:00 CET (+1) = Mar 28 23:00Z
    new = cal.cycle_at(boundary)
    old = cal.cycle_at(boundary - US)
    assert new[0] == boundary
    assert old[1] == boundary
    # Feb 29 does not exist in 2026: min(29, 28) = 28 -> Feb 28 00:00 CET = Feb 27 23:00Z.
    assert old[0] == utc(2026, 2, 27, 23)


# --------------------------------------------------------------------------- midnight gaps


def test_santiago_spring_forward_at_midnight() -> None:
    tz = SANTIAGO
    day = date(2026, 9, 6)
    # Verify the zone data instead of assuming it: local 00:00 on Sep 6 does not exist.
    assert not midnight_exists(day, tz)
    before = tz.utcoffset(datetime(2026, 9, 5, 12))
    after = tz.utcoffset(datetime(2026, 9, 6, 12))
    assert before == timedelta(hours=-4)
    assert after == timedelta(hours=-3)
    # Sep 5 ends at 24:00 under the old offset: Sep 6 00:00 - (-4 h) = Sep 6 04:00Z.
    first = utc(2026, 9, 6, 4)
    # It is the first instant of Sep 6: one microsecond earlier is still Sep 5 ...
    assert (first - US).astimezone(tz).date() == date(2026, 9, 5)
    assert first.astimezone(tz).date() == day
    # ... and its wall time is 04:00Z + (-3 h) = 01:00, not 00:00.
    assert first.astimezone(tz).time() == time(1, 0)

    assert local_midnight(day, tz) == first

    cal = CycleCalendar(6, "America/Santiago")
    assert tz.utcoffset(datetime(2026, 10, 6)) == timedelta(hours=-3)
    # Oct 6 00:00 -03 = 03:00Z. Sep 6 has only 23 hours: 30 * 24 - 1 = 719 hours.
    start, end = cal.cycle_at(first)
    assert (start, end) == (first, utc(2026, 10, 6, 3))
    assert end - start == timedelta(hours=719)
    # 01:30 local on Sep 6 is in the new cycle.
    assert cal.cycle_at(datetime(2026, 9, 6, 1, 30, tzinfo=tz))[0] == first
    # Aug 6 00:00 -04 = 04:00Z; Aug 6 -> Sep 6 04:00Z = 31 days = 744 hours.
    old = cal.cycle_at(first - US)
    assert old == (utc(2026, 8, 6, 4), first)
    assert old[1] - old[0] == timedelta(hours=744)
    assert cal.next_boundary(old[0]) == first
    assert cal.next_boundary(first) == end


def santiago_gap_days() -> list[date]:
    """Every day of 2020-2035 whose local midnight does not exist in Santiago."""
    days = []
    for year in range(2020, 2036):
        d = date(year, 1, 1)
        while d.year == year:
            if not midnight_exists(d, SANTIAGO):
                days.append(d)
            d += timedelta(days=1)
    return days


def test_santiago_has_gap_days_to_test() -> None:
    gaps = santiago_gap_days()
    assert date(2026, 9, 6) in gaps
    assert len(gaps) >= 10


@pytest.mark.parametrize("gap_day", santiago_gap_days())
def test_every_santiago_gap_day_starts_at_its_first_instant(gap_day: date) -> None:
    cal = CycleCalendar(gap_day.day, "America/Santiago")
    noon = datetime.combine(gap_day, time(12), tzinfo=SANTIAGO)
    start, end = cal.cycle_at(noon)
    assert start.astimezone(SANTIAGO).date() == gap_day
    assert start.astimezone(SANTIAGO).time() != time(0)
    assert (start - US).astimezone(SANTIAGO).date() == gap_day - timedelta(days=1)
    assert cal.cycle_at(start - US)[1] == start
    assert end == cal.next_boundary(start)


def test_santiago_fall_back_repeats_the_last_hour_before_the_boundary() -> None:
    tz = SANTIAGO
    # Verify the zone data: 23:30 on Apr 4 2026 happens twice (-03, then -04).
    first = datetime(2026, 4, 4, 23, 30, tzinfo=tz)
    second = datetime(2026, 4, 4, 23, 30, fold=1, tzinfo=tz)
    assert first.utcoffset() == timedelta(hours=-3)
    assert second.utcoffset() == timedelta(hours=-4)
    assert midnight_exists(date(2026, 4, 5), tz)
    assert tz.utcoffset(datetime(2026, 4, 5, 12)) == timedelta(hours=-4)

    cal = CycleCalendar(5, "America/Santiago")
    # Apr 5 00:00 -04 = 04:00Z; Mar 5 00:00 -03 = 03:00Z.
    boundary = utc(2026, 4, 5, 4)
    # 23:30 -04 (second time) = 03:30Z is still before Apr 5 00:00: the old cycle.
    assert second.astimezone(UTC) == utc(2026, 4, 5, 3, 30)
    old = cal.cycle_at(second)
    assert old == (utc(2026, 3, 5, 3), boundary)
    # Mar 5 -> Apr 5 = 31 days, plus the repeated hour: 31 * 24 + 1 = 745 hours.
    assert old[1] - old[0] == timedelta(hours=745)
    assert cal.cycle_at(boundary)[0] == boundary


# --------------------------------------------------------------------------- boundaries


def test_local_midnight() -> None:
    # Mar 8 00:00 EST (-5) = 05:00Z; Mar 29 00:00 CET (+1) = Mar 28 23:00Z.
    assert local_midnight(date(2026, 3, 8), NY) == utc(2026, 3, 8, 5)
    assert local_midnight(date(2026, 3, 29), BERLIN) == utc(2026, 3, 28, 23)
    # Nov 1 00:00 EDT (-4) = 04:00Z.
    assert local_midnight(date(2026, 11, 1), NY) == utc(2026, 11, 1, 4)
    assert local_midnight(date(2026, 3, 8), NY).utcoffset() == timedelta(0)


def test_boundaries_between_two_instants() -> None:
    cal = CycleCalendar(31, "UTC")
    # min(31, days in month): Jan 31, Feb 28, Mar 31, Apr 30, May 31; `until` is inclusive.
    assert cal.boundaries(utc(2026, 1, 15), utc(2026, 5, 31)) == [
        utc(2026, 1, 31),
        utc(2026, 2, 28),
        utc(2026, 3, 31),
        utc(2026, 4, 30),
        utc(2026, 5, 31),
    ]
    # `after` is exclusive: a boundary equal to it is not listed.
    assert cal.boundaries(utc(2026, 1, 31), utc(2026, 3, 31)) == [
        utc(2026, 2, 28),
        utc(2026, 3, 31),
    ]
    assert cal.boundaries(utc(2026, 1, 31), utc(2026, 3, 31) - US) == [utc(2026, 2, 28)]
    assert cal.boundaries(utc(2026, 2, 1), utc(2026, 2, 27)) == []


def test_boundaries_across_dst() -> None:
    cal = CycleCalendar(1, "Europe/Berlin")
    # Mar 1 00:00 CET = Feb 28 23:00Z; Apr 1 00:00 CEST = Mar 31 22:00Z;
    # May 1 00:00 CEST = Apr 30 22:00Z.
    assert cal.boundaries(utc(2026, 2, 15), utc(2026, 5, 1)) == [
        utc(2026, 2, 28, 23),
        utc(2026, 3, 31, 22),
        utc(2026, 4, 30, 22),
    ]


def test_shift_cycles() -> None:
    cal = CycleCalendar(31, "UTC")
    jan31 = utc(2026, 1, 31)
    assert cal.shift_cycles(jan31, 0) == jan31
    assert cal.shift_cycles(jan31, 1) == utc(2026, 2, 28)
    # After the short February the day goes back to 31, not 28: Feb 28 -> Mar 31 -> Apr 30.
    assert cal.shift_cycles(jan31, 2) == utc(2026, 3, 31)
    assert cal.shift_cycles(jan31, 3) == utc(2026, 4, 30)
    # 12 cycles after Jan 31 2026 is Jan 31 2027.
    assert cal.shift_cycles(jan31, 12) == utc(2027, 1, 31)


def test_next_boundary_in_new_york() -> None:
    cal = CycleCalendar(31, "America/New_York")
    # Jan 31 00:00 EST = 05:00Z -> Feb 28 00:00 EST = 05:00Z -> Mar 31 00:00 EDT = 04:00Z.
    assert cal.next_boundary(utc(2026, 1, 31, 5)) == utc(2026, 2, 28, 5)
    assert cal.next_boundary(utc(2026, 2, 28, 5)) == utc(2026, 3, 31, 4)


# --------------------------------------------------------------------------- calendar arithmetic


def test_add_calendar_months_clamps_to_month_end() -> None:
    # Jan 31 2026 10:00 CET (+1) = 09:00Z. +1 month -> Feb 28 (2026 has no Feb 29)
    # 10:00 CET = 09:00Z.
    jan31 = utc(2026, 1, 31, 9)
    assert add_calendar_months(jan31, 1, BERLIN) == utc(2026, 2, 28, 9)
    # +2 months -> Mar 31 10:00 CEST (+2, DST since Mar 29) = 08:00Z.
    assert add_calendar_months(jan31, 2, BERLIN) == utc(2026, 3, 31, 8)
    # +12 months -> Jan 31 2027 10:00 CET = 09:00Z.
    assert add_calendar_months(jan31, 12, BERLIN) == utc(2027, 1, 31, 9)
    # 0 months is the same instant.
    assert add_calendar_months(jan31, 0, BERLIN) == jan31
    # Mar 31 10:00 CEST = 08:00Z, -1 month -> Feb 28 10:00 CET = 09:00Z.
    assert add_calendar_months(utc(2026, 3, 31, 8), -1, BERLIN) == utc(2026, 2, 28, 9)


def test_add_calendar_months_leap_year() -> None:
    # Jan 31 2028 10:00 CET = 09:00Z; 2028 is a leap year -> Feb 29 10:00 CET = 09:00Z.
    assert add_calendar_months(utc(2028, 1, 31, 9), 1, BERLIN) == utc(2028, 2, 29, 9)
    assert add_calendar_months(utc(2026, 1, 31), 1, ZoneInfo("UTC")) == utc(2026, 2, 28)
    # Nov 30 2027 + 3 months -> Feb 2028: min(30, 29) = 29.
    assert add_calendar_months(utc(2027, 11, 30), 3, ZoneInfo("UTC")) == utc(2028, 2, 29)


def test_add_calendar_months_uses_the_local_calendar() -> None:
    at = utc(2026, 1, 30, 20)
    # In UTC: Jan 30 20:00 + 1 month -> Feb 28 (min(30, 28)) 20:00Z.
    assert add_calendar_months(at, 1, ZoneInfo("UTC")) == utc(2026, 2, 28, 20)
    # In Kolkata (+5:30): Jan 31 01:30 -> Feb 28 01:30 IST = Feb 27 20:00Z.
    assert add_calendar_months(at, 1, ZoneInfo("Asia/Kolkata")) == utc(2026, 2, 27, 20)


def test_add_days_keeps_local_wall_time_across_spring_forward() -> None:
    # Mar 7 09:00 EST (-5) = 14:00Z; +1 day -> Mar 8 09:00 EDT (-4) = 13:00Z: 23 hours.
    at = utc(2026, 3, 7, 14)
    later = add_days(at, 1, NY)
    assert later == utc(2026, 3, 8, 13)
    assert later - at == timedelta(hours=23)
    assert later.astimezone(NY).time() == time(9)


def test_add_days_keeps_local_wall_time_across_fall_back() -> None:
    # Oct 24 09:00 CEST (+2) = 07:00Z; +1 day -> Oct 25 09:00 CET (+1) = 08:00Z: 25 hours.
    at = utc(2026, 10, 24, 7)
    later = add_days(at, 1, BERLIN)
    assert later == utc(2026, 10, 25, 8)
    assert later - at == timedelta(hours=25)


def test_add_days_thirty_day_pass() -> None:
    # Mar 1 09:00 EST = 14:00Z; +30 days -> Mar 31 09:00 EDT = 13:00Z.
    assert add_days(utc(2026, 3, 1, 14), 30, NY) == utc(2026, 3, 31, 13)
    assert add_days(utc(2026, 3, 31, 13), -30, NY) == utc(2026, 3, 1, 14)
    assert add_days(utc(2026, 3, 1, 14), 0, NY) == utc(2026, 3, 1, 14)


def test_add_days_zero_keeps_the_second_occurrence_of_a_repeated_time() -> None:
    # NY falls back at 02:00 EDT = 06:00Z on Nov 1 2026, so 01:30 happens twice:
    # 01:30 EDT = 05:30Z and 01:30 EST = 06:30Z. Adding 0 days changes neither.
    # (Regression: naive arithmetic dropped fold and moved 06:30Z to 05:30Z.)
    assert add_days(utc(2026, 11, 1, 5, 30), 0, NY) == utc(2026, 11, 1, 5, 30)
    assert add_days(utc(2026, 11, 1, 6, 30), 0, NY) == utc(2026, 11, 1, 6, 30)


def test_add_days_into_a_gap_lands_after_it() -> None:
    # Mar 7 02:30 EST = 07:30Z; Mar 8 02:30 does not exist in NY. The result is read
    # with the offset before the gap (-5): 07:30Z = 03:30 EDT, still 24 hours later.
    assert add_days(utc(2026, 3, 7, 7, 30), 1, NY) == utc(2026, 3, 8, 7, 30)


# --------------------------------------------------------------------------- property

PROPERTY_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
]


@settings(max_examples=400, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2035, 12, 31, 23, 59, 59, 999999),
        timezones=st.sampled_from([UTC, *(ZoneInfo(name) for name in PROPERTY_ZONES)]),
    ),
    day=st.integers(min_value=1, max_value=31),
    zone_name=st.sampled_from(PROPERTY_ZONES),
)
def test_cycle_at_property(at: datetime, day: int, zone_name: str) -> None:
    cal = CycleCalendar(day, zone_name)
    at_utc = at.astimezone(UTC)
    start, end = cal.cycle_at(at)
    assert start <= at_utc < end
    assert end == cal.next_boundary(start)
    assert_boundary(cal, start)
    assert_boundary(cal, end)
    # Consecutive local months.
    tz = ZoneInfo(zone_name)
    s, e = start.astimezone(tz), end.astimezone(tz)
    assert (e.year * 12 + e.month) - (s.year * 12 + s.month) == 1
    # The boundary belongs to the new cycle; a microsecond earlier, to the old one.
    assert cal.cycle_at(end) == (end, cal.next_boundary(end))
    assert cal.cycle_at(start - US)[1] == start
    assert cal.boundaries(start - US, end) == [start, end]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 31), st.sampled_from(["UTC", "America/New_York", "Europe/Berlin",
                                             "America/Santiago", "Australia/Lord_Howe"]),
       st.lists(st.integers(0, 3 * 365 * 86_400 * 10**6), min_size=1, max_size=40))
def test_cycle_at_remembers_nothing_that_changes_its_answer(day, tz, offsets) -> None:
    """`cycle_at` keeps the last cycle it found: any sequence of instants (in runs, across
    boundaries, backwards, exactly on a boundary) gets the answers a fresh calendar
    gives, and the memo is not part of the calendar's value."""
    used = CycleCalendar(day, tz)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    instants = [start + timedelta(microseconds=o) for o in offsets]
    instants += [used.cycle_at(instants[0])[1], used.cycle_at(instants[0])[1] - US]
    for at in instants:
        assert used.cycle_at(at) == CycleCalendar(day, tz).cycle_at(at)
        assert used.cycle_at(at.astimezone(NY)) == CycleCalendar(day, tz).cycle_at(at)
    assert used == CycleCalendar(day, tz) and hash(used) == hash(CycleCalendar(day, tz))
    assert repr(used) == repr(CycleCalendar(day, tz))
