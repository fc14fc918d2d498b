"""What each input does to a book: the checks it must pass, and the rules of
top-ups, gifts and usage.

- `check`: what can be refused without folding (an unknown line or plan, an
  instant before the line started, amounts out of bounds (domain/bounds.py), a
  gift to oneself or with the family pool). A refused input raises `Refused`.
- `top_up`: a new top-up bucket, or under a plan that merges them, more in the
  live pass.
- `gift`: a member's rollover and top-up moved to another member, each source
  into a gift bucket with its expiry (docs/semantics.md, "Family pools").
- `rate`: usage drained through the line's queue (domain/rating.py), with the
  member's limit on the pool, overage and the cycle's counters.

Opening a line and changing its plan are grants (domain/plan_grants.py); when
anything happens is the book's (domain/book.py), which calls these at the
input's effective instant.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from carryover.domain import ids
from carryover.domain.bounds import MAX_BUCKET, MAX_EVENT, BoundError, check_amount, total_after
from carryover.domain.buckets import POOL, UNLIMITED, Bucket
from carryover.domain.cycles import add_days
from carryover.domain.folding import Folding
from carryover.domain.inputs import HOTSPOT, Gift, Input, OpenLine, SetLimit, TopUp, Usage
from carryover.domain.ledger import Entry, EntryKind
from carryover.domain.plans import BucketKind, TopupMode
from carryover.domain.rating import drain


class Refused(Exception):
    """An input that cannot be applied; the reason is for the operator."""


def check(book: Folding, item: Input) -> None:
    """Checks that need no fold: known line and plan, sane instants and amounts."""
    plan_id = getattr(item, "plan_id", None)
    if plan_id is not None and plan_id not in book.plans:
        raise Refused(f"unknown plan {plan_id!r}")
    if isinstance(item, OpenLine):
        if item.line in book.lines:
            raise Refused(f"line {item.line!r} is already open")
        return
    lines = [item.line] + ([item.from_line] if isinstance(item, Gift) else [])
    for line in lines:
        state = book.lines.get(line)
        if state is None:
            raise Refused(f"unknown line {line!r}")
        if item.at < state.opened_at:
            raise Refused(f"{item.at.isoformat()} is before line {line!r} started "
                          f"({state.opened_at.isoformat()})")
    amount = getattr(item, "amount", 0)
    if amount is not None and amount < 0:
        raise Refused(f"amount {amount} is negative")
    if amount is not None:
        try:  # a limit caps a cycle like an allowance; the rest are single events
            check_amount("amount", amount,
                         MAX_BUCKET if isinstance(item, SetLimit) else MAX_EVENT)
        except BoundError as exc:
            raise Refused(str(exc)) from None
    if isinstance(item, Usage) and item.received_at is not None and item.received_at < item.at:
        raise Refused("received_at is before at: usage cannot be reported before it happens")
    if isinstance(item, Gift) and item.from_line == item.line:
        raise Refused("a line cannot gift to itself")
    if isinstance(item, Gift) and POOL in (item.from_line, item.line):
        # Gifts move a member's own rollover or top-up to another member
        # (docs/semantics.md, "Family pools");
        # the pool is shared by all, and taking from it goes through member limits.
        raise Refused("gifts are between member lines; the family pool cannot gift "
                      "or be gifted")


def top_up(book: Folding, item: TopUp) -> None:
    plan = book.governing_plan(item.line)
    tz = book.calendar.tz
    until = (book.cycle_end if item.valid_days is None
             else add_days(item.at, item.valid_days, tz))
    if plan is not None and plan.topup_mode is TopupMode.MERGE:
        live = [b for b in book.own_buckets(item.line, item.unit, item.at)
                if b.kind is BucketKind.TOPUP]
        if live:
            target = live[0]
            try:  # a merged pass is one bucket: it must stay within a bucket's bound
                total_after("amount", target.granted or 0, item.amount, MAX_BUCKET,
                            what="the live pass it merges into")
            except BoundError as exc:
                raise Refused(str(exc)) from None
            target.granted = (target.granted or 0) + item.amount
            target.remaining = (target.remaining or 0) + item.amount
            target.valid_until = max(target.valid_until or until, until)
            book.book(item.at, EntryKind.GRANT, target, item.amount, item.line, item.id,
                      "merged into the live pass")
            return
    bucket = Bucket(
        id=ids.topup_id(item.line, item.unit, item.id), owner=item.line, unit=item.unit,
        kind=BucketKind.TOPUP, granted=item.amount, valid_from=item.at, valid_until=until,
        priority=plan.priority(BucketKind.TOPUP) if plan else 40,
        rollable=bool(plan and plan.rolls(BucketKind.TOPUP)), origin=item.id,
    )
    book.add_bucket(bucket, EntryKind.GRANT, item.at, item.line, item.id)


def gift(book: Folding, item: Gift, strict: bool) -> None:
    sources = [b for b in book.own_buckets(item.from_line, item.unit, item.at)
               if b.kind in (BucketKind.ROLLOVER, BucketKind.TOPUP)]
    giftable = sum(b.remaining or 0 for b in sources)
    # A gift moves what it asks for or, with less to give, what there is: the same
    # rule at arrival and in any replay, so arrival order cannot change the balances
    # (docs/semantics.md, "Family pools"). Only a gift with nothing at all to move is
    # refused.
    if strict and giftable == 0 and item.amount > 0:
        raise Refused(f"line {item.from_line!r} has nothing giftable (no rollover or "
                      f"top-up left) at {item.at.isoformat()}")
    plan = book.governing_plan(item.line)
    need = item.amount
    for n, source in enumerate(sources):
        take = min(need, source.remaining or 0)
        if take <= 0:
            continue
        need -= take
        source.remaining = (source.remaining or 0) - take
        book.book(item.at, EntryKind.TRANSFER_OUT, source, take, item.from_line, item.id,
                  f"gift to {item.line}")
        given = Bucket(
            id=ids.gift_id(item.line, item.unit, item.id, n), owner=item.line, unit=item.unit,
            kind=BucketKind.GIFT, granted=take, valid_from=item.at,
            valid_until=source.valid_until,  # a gift keeps its source's expiry
            priority=plan.priority(BucketKind.GIFT) if plan else 50,
            rollable=bool(plan and plan.rolls(BucketKind.GIFT)), origin=source.id,
        )
        book.add_bucket(given, EntryKind.TRANSFER_IN, item.at, item.line, item.id,
                        f"gift from {item.from_line}")


def rate(book: Folding, item: Usage, at: datetime) -> None:
    state = book.lines[item.line]
    cycle = book.cycle_start.isoformat()
    try:  # the stored usage counter must not pass MAX_TOTAL (domain/bounds.py)
        total_after("amount", book.counters.get((cycle, item.line, item.unit, "used"), 0),
                    item.amount, what="the line's usage in the cycle")
    except BoundError as exc:
        raise Refused(str(exc)) from None
    queue = book.queue(item.line, item.unit, at)
    pooled = np.array([b.owner == POOL for b in queue], dtype=bool)
    limit = state.limits.get(item.unit)
    taken = book.counters.get((cycle, item.line, item.unit, "pool"), 0)
    cap = UNLIMITED if limit is None else max(0, limit - taken)
    result = drain(np.array([item.amount]), np.array([0, len(queue)]),
                   np.array([b.left() for b in queue], dtype=np.int64), pooled,
                   np.array([cap]))
    for bucket, debit in zip(queue, result.debit.tolist(), strict=True):
        if debit:
            if bucket.remaining is not None:
                bucket.remaining -= debit
            book.book(at, EntryKind.DEBIT, bucket, debit, item.line, item.id)
    overage = int(result.overage[0])
    if overage:
        book.entries.append(Entry(at, EntryKind.OVERAGE, item.unit, overage, None, item.line,
                                  item.line, item.id, "", book.recording_instant(at)))
    book.seen_usage.add(item.id)
    # Only counters that move are touched: an absent counter reads as zero.
    for name, value in (("used", item.amount), ("overage", overage),
                        ("pool", int(result.pool_taken[0])),
                        ("hotspot", item.amount if item.rating_group == HOTSPOT else 0)):
        if value:
            book.counters[(cycle, item.line, item.unit, name)] += value

