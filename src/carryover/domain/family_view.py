"""What the family owner's page shows: each line's use this cycle against its limit on
the pool, and what the pool holds.

An account with a pool plan is a family: its member lines draw on the pool after
their own buckets (docs/semantics.md), each up to its member limit per cycle. For
every line: whether it is a member, its data used this cycle (`used`), what of that
came from the pool (`from_pool`) and its limit (None: no cap). For the pool: what
its open data buckets valid at the instant were granted and have left (None:
unlimited).

Pure: the caller gives the book (at the instant) and the instant.
"""

from __future__ import annotations

from datetime import datetime

from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.units import Unit


def family(book: AccountBook, at: datetime) -> dict | None:
    """The family view of `book` at `at`, or None for an account without a pool."""
    if POOL not in book.lines or book.cycle_start is None:
        return None
    granted: int | None = 0
    left: int | None = 0
    for bucket in book.buckets.values():
        if (bucket.owner != POOL or bucket.unit is not Unit.DATA or bucket.closed
                or bucket.valid_from > at
                or (bucket.valid_until is not None and bucket.valid_until <= at)):
            continue
        granted = None if granted is None or bucket.granted is None else granted + bucket.granted
        left = None if left is None or bucket.remaining is None else left + bucket.remaining
    members = []
    for name in sorted(n for n in book.lines if n != POOL):
        state = book.lines[name]
        members.append({
            "line": name, "member": state.member, "plan": state.plan_id,
            "used": book.counter(book.cycle_start, name, Unit.DATA, "used"),
            "from_pool": book.counter(book.cycle_start, name, Unit.DATA, "pool"),
            "limit": state.limits.get(Unit.DATA)})
    return {"pool_plan": book.lines[POOL].plan_id, "pool_granted": granted,
            "pool_left": left, "members": members}
