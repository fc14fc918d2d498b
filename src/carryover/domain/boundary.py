"""What happens at an instant in time rather than because of an input.

The rules are docs/semantics.md, "Cycles and rollover at the boundary instant", and
docs/semantics.md, "Plan changes".

- `expire_due`: buckets whose validity ends lose what is left (`expire`).
- `close_cycle`: at boundary T, for each owner and unit: expire what ends at T
  and does not roll; carry each rollable bucket by the rule of domain/rollover.py
  (per-unit caps, stash, deposits) into a rollover bucket valid from T exactly;
  expire the rest; apply plan changes scheduled for the next cycle; grant the
  new cycle's allowances.

What a plan grants and takes back (allowances, packs, a plan change's forfeits)
is plan_grants.py, which this module calls at the boundary.

These functions change a book through domain/folding.py's `Folding`; they are
split out to keep the book's own module about ordering and replay.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from carryover.domain import ids, plan_grants, rollover
from carryover.domain.buckets import Bucket, in_consumption_order
from carryover.domain.folding import Folding
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind, PlanKind

_END = datetime.max.replace(tzinfo=UTC)


def expire_due(book: Folding, at: datetime) -> None:
    book.mark_segment(at)
    for bucket in in_consumption_order(book.buckets.live()):
        if bucket.valid_until is not None and bucket.valid_until <= at:
            plan_grants.close_bucket(book, bucket, bucket.valid_until, EntryKind.EXPIRE,
                   ids.expiry_ref(ids.stamp(at)))


def close_cycle(book: Folding, boundary: datetime) -> None:
    ref = ids.boundary_ref(ids.stamp(boundary))
    book.mark_segment(boundary)
    live = book.buckets.live()
    sources = [b for b in live if rollover.is_source(b.rollable, b.valid_until, boundary)]
    source_ids = {b.id for b in sources}
    for bucket in in_consumption_order(live):
        if bucket.valid_until is not None and rollover.expires_at(
                bucket.valid_until, boundary, bucket.id in source_ids):
            plan_grants.close_bucket(book, bucket, bucket.valid_until, EntryKind.EXPIRE, ref)
    for owner in sorted({b.owner for b in sources}):
        for unit in sorted({b.unit for b in sources if b.owner == owner}):
            own = in_consumption_order(b for b in sources if b.owner == owner and b.unit == unit)
            _carry(book, owner, unit, own, boundary, ref)

    for state in sorted(book.lines.values(), key=lambda s: s.line):
        if state.pending_plan is not None:
            plan_grants.leave_plan(book, state.line, boundary, ref, closing_cycle=True)
            state.plan_id, state.pending_plan = state.pending_plan, None

    book.cycle_start = boundary
    book.cycle_end = book.calendar.next_boundary(boundary)
    for state in sorted(book.lines.values(), key=lambda s: s.line):
        plan = book.plan(state.plan_id)
        if plan is not None and plan.kind is not PlanKind.PACK:
            plan_grants.grant_allowances(book, state.line, plan, boundary, boundary, ref)


def _carry(book: Folding, owner: str, unit, sources: list[Bucket], boundary: datetime,
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
        plan_grants.close_bucket(book, source, boundary, EntryKind.EXPIRE, ref,
                                 rollover.EXPIRE_NOTE)
