"""Inputs: everything that happens to an account, as immutable values.

The fold over them is docs/semantics.md, "A line's state is a fold".

The state of an account is a pure function of its inputs. Each input has the
instant it takes effect and an id; the book folds them in the order
(effective instant, rank, id). The rank puts changes of plan, limits and grants
before usage at the very same instant, so a top-up bought at 12:00 covers usage
reported at 12:00.

Usage has two instants: `at` (when it happened) and `received_at` (when the
network reported it). Within the grace window after its cycle closed it is
rated at `at`, in its own cycle; after that the cycle is final and the event is
rated at its arrival, marked late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carryover.domain.cycles import CycleCalendar
from carryover.domain.lateness import is_late
from carryover.domain.units import Unit

DEFAULT_GRACE = timedelta(hours=48)
HOTSPOT = "hotspot"


@dataclass(frozen=True, slots=True)
class OpenLine:
    """A line (or, with line == buckets.POOL, the family pool) starts on a plan."""

    id: str
    line: str
    at: datetime
    plan_id: str | None
    member: bool = False  # draws from the account's pool
    rank = 0


@dataclass(frozen=True, slots=True)
class ChangePlan:
    id: str
    line: str
    at: datetime
    plan_id: str
    effective: str = "now"  # or "next_cycle"
    rank = 1


@dataclass(frozen=True, slots=True)
class SetLimit:
    """A family member's cap on what it may take from the pool per cycle (None lifts it)."""

    id: str
    line: str
    at: datetime
    amount: int | None
    unit: Unit = Unit.DATA
    rank = 2


@dataclass(frozen=True, slots=True)
class TopUp:
    id: str
    line: str
    at: datetime
    amount: int
    unit: Unit = Unit.DATA
    valid_days: int | None = None  # None: until the end of the current cycle
    rank = 3


@dataclass(frozen=True, slots=True)
class Gift:
    id: str
    from_line: str
    line: str  # the recipient
    at: datetime
    amount: int
    unit: Unit = Unit.DATA
    rank = 4


@dataclass(frozen=True, slots=True)
class Usage:
    id: str  # the event_id; the same id twice is counted once
    line: str
    at: datetime
    amount: int
    unit: Unit = Unit.DATA
    rating_group: str | None = None
    received_at: datetime | None = None  # None: reported as it happened
    rank = 5

    def arrival(self) -> datetime:
        return self.received_at or self.at


Input = OpenLine | ChangePlan | SetLimit | TopUp | Gift | Usage


def effective_instant(
    item: Input, calendar: CycleCalendar, grace: timedelta = DEFAULT_GRACE
) -> tuple[datetime, bool]:
    """(instant the input is rated at, whether it is late): docs/semantics.md, "Late usage"."""
    if not isinstance(item, Usage) or item.received_at is None:
        return item.at, False
    if is_late(item.at, item.received_at, calendar, grace):
        return item.received_at, True
    return item.at, False


def arrival_instant(item: Input) -> datetime:
    return item.arrival() if isinstance(item, Usage) else item.at


def order_key(item: Input, calendar: CycleCalendar, grace: timedelta = DEFAULT_GRACE) -> tuple:
    """The total order inputs are folded in: (effective instant, rank, id)."""
    at, _ = effective_instant(item, calendar, grace)
    return (at, item.rank, item.id)
