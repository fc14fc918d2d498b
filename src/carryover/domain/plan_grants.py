"""What a plan gives a line (or the family pool) and what it takes back.

- `grant_plan`: the grants when a line starts on a plan or changes to it: a
  pack's one allowance valid N days, or the cycle's allowances (prorated by the
  microseconds left when the line joins mid-cycle, rounding down).
- `grant_allowances`: one cycle's allowances, also granted at each boundary
  (boundary.close_cycle); `allowance_terms` is what the columnar fold
  (columnar/fold.py) grants with too, so both folds give the same buckets.
- `leave_plan`: what a line loses on a plan change: the old allowance, and its
  rollover where the old plan forfeits it (docs/semantics.md, "Plan changes").
- `close_bucket`: take what is left out of a bucket (expire or forfeit) and close it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from carryover.domain import ids
from carryover.domain.buckets import Bucket, in_consumption_order
from carryover.domain.cycles import add_days
from carryover.domain.folding import Folding
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind, Plan, PlanKind

_US = timedelta(microseconds=1)


def allowance_terms(plan: Plan, amount: int | None) -> tuple[int, bool]:
    """(priority, rollable) of an allowance of `amount` (None: unlimited) under `plan`."""
    return (plan.priority(BucketKind.ALLOWANCE),
            amount is not None and plan.rolls(BucketKind.ALLOWANCE))


def close_bucket(book: Folding, bucket: Bucket, at: datetime, kind: EntryKind, ref: str,
           note: str = "") -> None:
    """Take whatever is left out of the bucket (expire or forfeit) and close it."""
    if not bucket.unlimited and bucket.remaining:
        book.book(at, kind, bucket, bucket.remaining, None, ref, note)
        bucket.remaining = 0
    bucket.closed = True


def grant_plan(book: Folding, line: str, plan: Plan, at: datetime, prorate: bool,
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


def grant_allowances(book: Folding, owner: str, plan: Plan, cycle_from: datetime,
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
        priority, rollable = allowance_terms(plan, amount)
        bucket = Bucket(
            id=ids.allowance_id(owner, unit, ids.stamp(cycle_from), ref if changed else None),
            owner=owner, unit=unit, kind=BucketKind.ALLOWANCE, granted=granted,
            valid_from=at, valid_until=end, priority=priority, rollable=rollable, origin=ref,
        )
        book.add_bucket(bucket, EntryKind.GRANT, at, owner, ref, plan.id)


def leave_plan(book: Folding, line: str, at: datetime, ref: str,
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
            close_bucket(book, bucket, at, EntryKind.FORFEIT, ref, "plan change")
