"""The book as the fold's rules see it: the state and operations they act on.

An account book (domain/book.py) decides when things happen: in which order
inputs fold, when time advances, when a replay is due. What happens is the
rules': at boundaries and expiries (domain/boundary.py), when a plan grants or
takes back (domain/plan_grants.py), and for each input (domain/input_rules.py).
Those modules act on a `Folding`, the few parts of a book they read and change,
so that none of them depends on the book that calls them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from carryover.domain.book_state import LineState
from carryover.domain.buckets import Bucket, BucketTable
from carryover.domain.cycles import CycleCalendar
from carryover.domain.ledger import Entry, EntryKind
from carryover.domain.plans import Plan
from carryover.domain.units import Unit


class Folding(Protocol):
    """What the rules read and change of a book (domain/book.py `AccountBook`)."""

    calendar: CycleCalendar
    lines: dict[str, LineState]
    buckets: BucketTable
    entries: list[Entry]
    counters: dict[tuple, int]  # (cycle start, line, unit, counter) -> amount
    seen_usage: set[str]
    cycle_start: datetime | None
    cycle_end: datetime | None

    @property
    def plans(self) -> Mapping[str, Plan]: ...

    def plan(self, plan_id: str | None) -> Plan | None:
        """The version of `plan_id` in force at the fold's instant."""
        ...

    def plan_of(self, owner: str) -> Plan | None: ...

    def governing_plan(self, line: str) -> Plan | None:
        """The line's own plan, or for a plan-less family member the pool's."""
        ...

    def own_buckets(self, owner: str, unit: Unit, at: datetime) -> list[Bucket]: ...

    def queue(self, line: str, unit: Unit, at: datetime) -> list[Bucket]:
        """The buckets `line` draws at `at`, own and pool, in consumption order."""
        ...

    def add_bucket(self, bucket: Bucket, kind: EntryKind, at: datetime, line: str | None,
                   ref: str, note: str = "") -> None: ...

    def book(self, at: datetime, kind: EntryKind, bucket: Bucket, amount: int,
             line: str | None, ref: str, note: str = "") -> None: ...

    def recording_instant(self, effective_at: datetime) -> datetime: ...

    def mark_segment(self, at: datetime) -> None:
        """Something other than usage changed the buckets at `at`."""
        ...
