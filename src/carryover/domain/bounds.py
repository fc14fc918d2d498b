"""Bounds: the largest amounts and the window of instants the engine accepts (docs/semantics.md).

Amounts are Python integers end to end, but the store keeps them in signed 64-bit
columns (BIGINT, at most 2^63 - 1) and the rating core adds them in int64 arrays.
So every amount is bounded where it enters, and no sum the store keeps can pass
what a column holds:

- one usage event, one top-up, one gift, one member limit: at most MAX_EVENT
  (2^50: 1 PiB of data, 35 million years of voice, 10^15 messages);
- one bucket (an allowance, a cap, a merged pass, a rollover stash): at most
  MAX_BUCKET (2^60);
- a running total the store keeps (a line's usage of one unit in one cycle, its
  overage, what it took from the pool): at most MAX_TOTAL (2^62). An event that
  would take a total past it is refused, with that reason; nothing is clamped.

With these, the int64 arithmetic of the rating core cannot overflow: see
domain/rating.py, whose `drain` checks the one sum that grows with the number of
queue entries before it adds them in int64.

Time is bounded too. A write carries an instant no earlier than what it concerns
opened and no later than now plus a small clock skew; a read may look a bounded
way ahead of now. Instants before MIN_INSTANT (the first day of 1970) are refused
everywhere: cycle arithmetic and the store's µs timestamps both start there.
`now` is always a parameter: this module reads no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_EVENT = 2**50
MAX_BUCKET = 2**60
MAX_TOTAL = 2**62

MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_READ_AHEAD = timedelta(days=3 * 366)
# A what-if scenario (carryover simulate) runs in memory from its own start.
MAX_SCENARIO_SPAN = timedelta(days=10 * 366)


class BoundError(ValueError):
    """An amount or instant outside its bound; the message names the field and the bound."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.reason = field, message


def _power(bound: int) -> str:
    return f"2^{bound.bit_length() - 1} ({bound:,})"


def check_amount(field: str, value: int, bound: int = MAX_EVENT) -> int:
    """`value` if 0 <= value <= bound, else a BoundError naming `field` and the bound."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BoundError(field, f"{value!r} is not a whole number")
    if value < 0:
        raise BoundError(field, f"{value} is negative; amounts are zero or more")
    if value > bound:
        raise BoundError(field, f"{value:,} is more than {_power(bound)}, the largest "
                                f"{'event' if bound == MAX_EVENT else 'amount'} accepted")
    return value


def check_event(field: str, value: int) -> int:
    return check_amount(field, value, MAX_EVENT)


def check_bucket(field: str, value: int) -> int:
    return check_amount(field, value, MAX_BUCKET)


def past_total(what: str, bound: int = MAX_TOTAL) -> str:
    """The reason given when an input would take a stored total past `bound`."""
    return f"would take {what} past {_power(bound)}, the most a stored total holds"


def total_after(field: str, total: int, add: int, bound: int = MAX_TOTAL,
                what: str = "the total") -> int:
    """total + add, or a BoundError when it would pass `bound` (a stored running total)."""
    result = total + add
    if result > bound:
        raise BoundError(field, f"{add:,} {past_total(what, bound)}")
    return result


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _first(opened: datetime | None) -> datetime:
    """The first instant a write or read may name: MIN_INSTANT, or the line's start."""
    return max(MIN_INSTANT, opened) if opened is not None else MIN_INSTANT


def _too_early(at: datetime, opened: datetime | None, what: str) -> str | None:
    """Why `at` is before the first instant allowed, or None when it is not."""
    first = _first(opened)
    if at >= first:
        return None
    since = f"{what} started" if opened is not None and opened >= MIN_INSTANT else "1970"
    return f"{_utc(at)} is before {since} ({_utc(first)})"


def check_write_instant(field: str, at: datetime, now: datetime,
                        opened: datetime | None = None, what: str = "the line",
                        skew: timedelta = DEFAULT_CLOCK_SKEW) -> datetime:
    """`at` if MIN_INSTANT (or `opened`) <= at <= now + skew."""
    early = _too_early(at, opened, what)
    if early is not None:
        first = _first(opened)
        raise BoundError(field, f"{early}; writes are accepted from {_utc(first)} to now plus "
                                f"{int(skew.total_seconds())} s")
    if at > now + skew:
        raise BoundError(field, future_reason(at, now, skew))
    return at


def future_reason(at: datetime, now: datetime, skew: timedelta) -> str:
    """Why a write at `at`, past now + skew, is refused."""
    return (f"{_utc(at)} is in the future; writes are accepted up to now plus "
            f"{int(skew.total_seconds())} s ({_utc(now + skew)})")


def check_read_instant(field: str, at: datetime, now: datetime,
                       opened: datetime | None = None, what: str = "the line",
                       ahead: timedelta = DEFAULT_READ_AHEAD) -> datetime:
    """`at` if MIN_INSTANT (or `opened`) <= at <= now + ahead."""
    early = _too_early(at, opened, what)
    if early is not None:
        raise BoundError(field, early)
    if at > now + ahead:
        raise BoundError(field, f"{_utc(at)} is more than {ahead.days} days ahead of now; "
                                f"reads are accepted up to {_utc(now + ahead)}")
    return at


__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_READ_AHEAD",
    "MAX_BUCKET",
    "MAX_EVENT",
    "MAX_SCENARIO_SPAN",
    "MAX_TOTAL",
    "MIN_INSTANT",
    "BoundError",
    "check_amount",
    "check_bucket",
    "check_event",
    "check_read_instant",
    "check_write_instant",
    "future_reason",
    "past_total",
    "total_after",
]
