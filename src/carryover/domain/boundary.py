"""What happens at an instant in time rather than because of an input.

The rules are docs/semantics.md, "Cycles and rollover at the boundary instant", and
docs/semantics.md, "Plan changes".

- `expire_due`: buckets whose validity ends lose what is left (`expire`).
- `close_cycle`: at boundary T, for each owner and unit: expire what ends at T
  and does not roll; carry each rollable bucket by the rule of domain/rollover.py
  (per-unit caps, stash, deposits) into a rollover bucket valid from T exactly;
  expire the rest; apply plan changes scheduled for the next cycle; grant the
  new cycle's allowances.
- `grant_plan` / `leave_plan`: a plan's grants when a line starts on it or
  changes to it, and what a line loses when it leaves a plan.

These functions mutate an AccountBook; they are split out to keep the book's
own module about ordering and replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from carryover.domain import ids, rollover
from carryover.domain.buckets import Bucket, in_consumption_order
from carryover.domain.cycles import add_days
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind, Plan, PlanKind

if TYPE_CHECKING:
    from carryover.domain.book import AccountBook

_US = timedelta(microseconds=1)
_END = datetime.max.replace(tzinfo=UTC)
def _close(book: AccountBook, bucket: Bucket, at: datetime, kind: EntryKind, ref: str,
           note: str = "") -> None:
    """Take whatever is left out of the bucket (expire or forfeit) and close it."""
    if not bucket.unlimited and bucket.remaining:
        book.book(at, kind, bucket, bucket.remaining, None, ref, note)
        bucket.remaining = 0
    bucket.closed = True


def expire_due(book: AccountBook, at: datetime) -> None:
    book.mark_segment(at)
    for bucket in in_consumption_order(book.buckets.live()):
        if bucket.valid_until is not None and bucket.valid_until <= at:
            _close(book, bucket, bucket.valid_until, EntryKind.EXPIRE,
                   ids.expiry_ref(ids.stamp(at)))


def close_cycle(book: AccountBook, boundary: datetime) -> None:
    ref = ids.boundary_ref(ids.stamp(boundary))
    book.mark_segment(boundary)
    live = book.buckets.live()
    sources = [b for b in live if rollover.is_source(b.rollable, b.valid_until, boundary)]
    source_ids = {b.id for b in sources}
    for bucket in in_consumption_order(live):
        if bucket.valid_until is not None and rollover.expires_at(
                bucket.valid_until, boundary, bucket.id in source_ids):
            _close(book, bucket, bucket.valid_until, EntryKind.EXPIRE, ref)
    for owner in sorted({b.owner for b in sources}):
        for unit in sorted({b.unit for b in sources if b.owner == owner}):
            own = in_consumption_order(b for b in sources if b.owner == owner and b.unit == unit)
            _carry(book, owner, unit, own, boundary, ref)

    for state in sorted(book.lines.values(), key=lambda s: s.line):
        if state.pending_plan is not None:
            leave_plan(book, state.line, boundary, ref, closing_cycle=True)
            state.plan_id, state.pending_plan = state.pending_plan, None

    book.cycle_start = boundary
    book.cycle_end = book.calendar.next_boundary(boundary)
    for state in sorted(book.lines.values(), key=lambda s: s.line):
        plan = book.plan(state.plan_id)
        if plan is not None and plan.kind is not PlanKind.PACK:
            grant_allowances(book, state.line, plan, boundary, boundary, ref)


def _carry(book: AccountBook, owner: str, unit, sources: list[Bucket], boundary: datetime,
           ref: str) -> None:
    """One owner's and unit's sources at `boundary`, through domain/rollover.py."""
    # A plan-less family member rolls under the pool plan, the plan that made its
    # buckets rollable in the first place.
    plan = book.governing_plan(owner)
    left = np.array([s.remaining or 0 for s in sources], dtype=np.int64)
    if plan is None or plan.rollover is None:
        carried = np.zeros(len(sources), dtype=np.int64)
    else:
        per_cycle, stash = rollover.unit_caps(plan, unit)
        held = 0
        if stash is not None:
            source_ids = {s.id for s in sources}
            held = sum(b.remaining or 0 for b in book.own_buckets(owner, unit, boundary)
                       if rollover.in_stash(b.kind is BucketKind.ROLLOVER, b.valid_from,
                                            b.valid_until or _END, boundary,
                                            b.id in source_ids))
        room = rollover.room(per_cycle, stash, np.array([held]))
        carried = rollover.carry(left, np.zeros(len(sources), dtype=np.int64),
                                 np.repeat(room, len(sources)))
    for n, (source, amount) in enumerate(zip(sources, carried.tolist(), strict=True)):
        if amount > 0:
            deposit = Bucket(
                id=ids.deposit_id(owner, unit, ids.stamp(boundary), n), owner=owner,
                unit=unit, kind=BucketKind.ROLLOVER, granted=amount, valid_from=boundary,
                valid_until=rollover.deposit_until(plan.rollover, boundary, book.calendar),
                origin=source.id, **rollover.deposit_fields(plan),
            )
            book.book(boundary, EntryKind.ROLLOVER_OUT, source, amount, None, ref,
                      rollover.out_note(deposit.id))
            source.remaining = (source.remaining or 0) - amount
            book.add_bucket(deposit, EntryKind.ROLLOVER_IN, boundary, None, ref,
                            rollover.in_note(source.id))
        _close(book, source, boundary, EntryKind.EXPIRE, ref, rollover.EXPIRE_NOTE)


def grant_plan(book: AccountBook, line: str, plan: Plan, at: datetime, prorate: bool,
               ref: str, changed: bool = False) -> None:
    """Grants when a line starts on `plan` at `at` (mid-cycle: prorated if asked)."""
    if plan.kind is PlanKind.PACK:
        until = add_days(at, plan.pack_validity_days or 0, book.calendar.tz)
        for unit, amount in sorted(plan.allowances.items()):
            bucket = Bucket(
                id=ids.pack_id(line, unit, ref), owner=line, unit=unit, kind=BucketKind.ALLOWANCE,
                granted=amount, valid_from=at, valid_until=until,
                priority=plan.priority(BucketKind.ALLOWANCE), rollable=False, origin=ref,
            )
            book.add_bucket(bucket, EntryKind.GRANT, at, line, ref, f"{plan.id} pack")
        return
    grant_allowances(book, line, plan, at if prorate else book.cycle_start, at, ref, changed)


def grant_allowances(book: AccountBook, owner: str, plan: Plan, cycle_from: datetime,
                     at: datetime, ref: str, changed: bool = False) -> None:
    """One cycle's allowances from `cycle_from` (the cycle start, or later when prorated).

    A bucket's id is a function of the input that made it, never of what else the
    book holds: `owner/unit/allowance/<instant>` for the line's opening and for a
    boundary (one of each per owner and instant), and with `~<ref>` appended for a
    plan change (`changed`), of which there may be several in one second. A store
    that keeps only live buckets in memory and a replay that holds every bucket
    then name the same bucket alike."""
    start, end = book.cycle_start, book.cycle_end
    for unit, amount in sorted(plan.allowances.items()):
        granted = amount
        if amount is not None and cycle_from > start:
            # Prorate by the microseconds left in the cycle, rounding down: never grant
            # more than the plan allows.
            granted = amount * ((end - cycle_from) // _US) // ((end - start) // _US)
        bucket_id = ids.allowance_id(owner, unit, ids.stamp(cycle_from))
        if changed:
            bucket_id += f"~{ref}"
        bucket = Bucket(
            id=bucket_id, owner=owner, unit=unit,
            kind=BucketKind.ALLOWANCE, granted=granted, valid_from=at, valid_until=end,
            priority=plan.priority(BucketKind.ALLOWANCE),
            rollable=amount is not None and plan.rolls(BucketKind.ALLOWANCE), origin=ref,
        )
        book.add_bucket(bucket, EntryKind.GRANT, at, owner, ref, plan.id)


def leave_plan(book: AccountBook, line: str, at: datetime, ref: str,
               closing_cycle: bool = False) -> None:
    """What a line loses on a plan change: the old allowance (now) and, where the old
    plan says so, its rollover (docs/semantics.md, "Plan changes")."""
    plan = book.plan_of(line)
    forfeit_rollover = bool(plan and plan.rollover and plan.rollover.forfeit_on_plan_change)
    for bucket in in_consumption_order(book.buckets.live()):
        if bucket.closed or bucket.owner != line:
            continue
        if (bucket.kind is BucketKind.ALLOWANCE and not closing_cycle) or (
                bucket.kind is BucketKind.ROLLOVER and forfeit_rollover):
            _close(book, bucket, at, EntryKind.FORFEIT, ref, "plan change")
