"""The state an account book is kept as: restored from, compared with, written back.

A book (domain/book.py) is its lines, buckets and counters, and a `Cursor`:
the cycle it is in (`cycle_start`, `cycle_end`), the latest instant at which
anything but usage changed its buckets (`segment_start`: usage after it commutes,
see `AccountBook._commutes`), the instant it has folded up to (`until`) and the
fold-order key of the latest input folded (`last_key`, domain/inputs.order_key).
A store keeps all of these between transactions and rebuilds the book from
them with `AccountBook.restore`; the fold carries on exactly as if it had
never stopped (docs/semantics.md, "A line's state is a fold").

A `Snapshot` is what was saved: each bucket's moving parts, the counters and
each line's plan, pending plan and limits (plus, riding along for notifications,
the lines' MSISDNs and picked alert thresholds, which the book does not hold).
`changes` is what a book holds that its snapshot does not: the rows a store
writes back. A replay adopts a new state wholesale (`AccountBook.replayed`), so
after one every bucket and every counter of either side counts as changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from carryover.domain.buckets import Bucket
from carryover.domain.ledger import Entry
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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What was saved of a book (see the module docstring); empty for a new book."""

    buckets: Mapping[str, tuple] = field(default_factory=dict)  # id -> bucket_state
    counters: Mapping[tuple, int] = field(default_factory=dict)
    lines: Mapping[str, tuple] = field(default_factory=dict)  # line -> line_state
    msisdns: Mapping[str, str] = field(default_factory=dict)
    alert_thresholds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a book holds that its snapshot does not: the rows to write back."""

    entries: Sequence[Entry]  # booked this session (the ledger is append-only)
    buckets: list[Bucket]  # new or moved; after a replay every bucket
    counters: list[tuple[tuple, int]]  # (key, value) that moved, in str(key) order
    lines: list[LineState]  # whose plan, pending plan or limits moved, by line
    cursor: Cursor
    replayed: bool  # adopted wholesale: which buckets exist is the store's to say


def bucket_state(b: Bucket) -> tuple:
    """The parts of a bucket that a fold moves."""
    return (b.granted, b.remaining, b.valid_until, b.closed)


def line_state(s: LineState) -> tuple:
    """The parts of a line that a fold moves."""
    return (s.plan_id, s.pending_plan, dict(s.limits))


def snapshot(buckets: Mapping[str, Bucket], counters: Mapping[tuple, int],
             lines: Mapping[str, LineState], msisdns: Mapping[str, str],
             alert_thresholds: Mapping[str, tuple[int, ...]]) -> Snapshot:
    return Snapshot({b.id: bucket_state(b) for b in buckets.values()}, dict(counters),
                    {k: line_state(s) for k, s in lines.items()}, msisdns, alert_thresholds)


def changes(since: Snapshot, entries: Sequence[Entry], buckets: Mapping[str, Bucket],
            counters: Mapping[tuple, int], lines: Mapping[str, LineState], cursor: Cursor,
            replayed: bool) -> Changes:
    known = since.buckets
    moved = [b for b in buckets.values()
             if replayed or b.id not in known or known[b.id] != bucket_state(b)]
    # A replay may drop a counter to zero (absent from its book): the stored row is
    # written as 0 then, or it would keep the value booked before the replay.
    keys = set(counters) | (set(since.counters) if replayed else set())
    moved_counters = [(key, counters.get(key, 0)) for key in sorted(keys, key=str)
                      if replayed or since.counters.get(key) != counters.get(key, 0)]
    moved_lines = [state for name, state in sorted(lines.items())
                   if since.lines.get(name) != line_state(state)]
    return Changes(entries, moved, moved_counters, moved_lines, cursor, replayed)
