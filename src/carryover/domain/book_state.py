"""The state an account book is restored from: lines and where the fold stands.

A book (domain/book.py) is its lines, buckets and counters, and a `Cursor`:
the cycle it is in (`cycle_start`, `cycle_end`), the latest instant at which
anything but usage changed its buckets (`segment_start`: usage after it commutes,
see `AccountBook._commutes`), the instant it has folded up to (`until`) and the
fold-order key of the latest input folded (`last_key`, domain/inputs.order_key).
A store keeps all of these between transactions and rebuilds the book from
them with `AccountBook.restore`; the fold carries on exactly as if it had
never stopped (docs/semantics.md, "A line's state is a fold").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from carryover.domain.units import Unit


@dataclass(slots=True)
class LineState:
    line: str
    opened_at: datetime
    plan_id: str | None
    member: bool = False
    pending_plan: str | None = None  # takes effect at the next boundary
    limits: dict[Unit, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a book's fold stands (see the module docstring); all None before any input."""

    cycle_start: datetime | None = None
    cycle_end: datetime | None = None
    segment_start: datetime | None = None
    until: datetime | None = None
    last_key: tuple | None = None
