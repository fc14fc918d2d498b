"""Rollover: what crosses a cycle boundary, as one rule for every fold (docs/semantics.md).

The object book (domain/boundary.py) and the columnar fold (domain/columnar/fold.py)
both call these functions; neither holds a copy of the rule. At boundary T, for
one owner and one unit:

- the *sources* are the owner's live rollable buckets of that unit ending at T
  exactly, in consumption order; every other live bucket ending at or before T
  expires (`expires_at`);
- the *stash held* is what the owner's live rollover buckets of that unit that
  are not sources still hold at T, after the expiries at T (`in_stash`);
- the *room* is min(the unit's per-cycle cap, the unit's stash cap minus the
  stash held), where a cap written `allowance` is that unit's own allowance
  (`unit_caps`, `room`);
- source k carries min(left_k, what is left of the room after sources 0..k-1)
  into a *deposit*, a rollover bucket valid from T (`carry`, `deposit_*`); the
  rest of it expires with the note EXPIRE_NOTE.

Invariants (tests/unit/test_rollover.py checks them with generated cases):
- per source 0 <= carried <= left, and carried + expired = left;
- per owner and unit, the sum carried <= room; with no cap, everything carries;
- a cap of one unit never changes another unit's rollover: the room of a unit
  depends only on that unit's caps, allowance and stash;
- a deposit's id, validity, priority, rollability and ledger notes depend only
  on (owner, unit, T, position, plan, calendar), so any fold that makes the same
  choices books identical entries.

Amounts are int64 arrays so one call serves one owner or a million; NO_CAP
marks "no cap" in a room array (the engine's bounds keep every amount far
below int64's range, so no sum here can wrap).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from carryover.domain.cycles import CycleCalendar, add_calendar_months
from carryover.domain.plans import ALLOWANCE, BucketKind, Cap, Plan, RolloverPolicy
from carryover.domain.units import Unit

NO_CAP = -1
EXPIRE_NOTE = "not carried"


def _resolve(cap: Cap | None, allowance: int | None) -> int | None:
    if cap == ALLOWANCE:
        return allowance  # an unlimited allowance caps nothing
    return cap  # type: ignore[return-value]


def unit_caps(plan: Plan, unit: Unit) -> tuple[int | None, int | None]:
    """(per-cycle cap, stash cap) of `unit` under `plan`, None where there is none.

    Only `unit`'s own entries are read: a cap never applies across units."""
    policy = plan.rollover
    if policy is None:
        return None, None
    allowance = plan.allowances.get(unit)
    per_cycle = _resolve((policy.per_cycle_cap or {}).get(unit), allowance)
    stash = _resolve((policy.stash_cap or {}).get(unit), allowance)
    return per_cycle, stash


def room(per_cycle: int | None, stash: int | None, held: np.ndarray | int) -> np.ndarray:
    """What an owner may carry at one boundary: min(per-cycle cap, stash cap - held),
    elementwise over `held` (one value per owner); NO_CAP where neither cap is set."""
    held = np.asarray(held, dtype=np.int64)
    out = np.full(held.shape, NO_CAP if per_cycle is None else per_cycle, dtype=np.int64)
    if stash is not None:
        left = np.maximum(0, stash - held)
        out = np.where(out == NO_CAP, left, np.minimum(out, left))
    return out


def carry(left: np.ndarray, group: np.ndarray, room_of: np.ndarray) -> np.ndarray:
    """How much of each source carries.

    `left[i]` is what source i holds at T; sources come grouped by (owner, unit)
    (`group` non-decreasing) and in consumption order within a group; `room_of[i]`
    is the room of source i's group (NO_CAP: none). Each source takes what it has,
    up to what its group's room still allows after the sources before it."""
    left = np.asarray(left, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    remaining = np.asarray(room_of, dtype=np.int64).copy()
    carried = left.copy()
    if len(left) == 0:
        return carried
    starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
    sizes = np.diff(np.append(starts, len(left)))
    position = np.arange(len(left)) - np.repeat(starts, sizes)
    group_room = remaining[starts]
    group_of = np.repeat(np.arange(len(starts)), sizes)
    # Position by position, every group at once: a group has few sources (its
    # allowance, and top-ups, gifts or deposits where they roll).
    for k in range(int(sizes.max())):
        at_k = np.flatnonzero(position == k)
        g = group_of[at_k]
        capped = group_room[g] != NO_CAP
        take = np.where(capped, np.minimum(left[at_k], group_room[g]), left[at_k])
        carried[at_k] = take
        group_room[g] = np.where(capped, group_room[g] - take, NO_CAP)
    return carried


def is_source(rollable, valid_until, boundary):
    """Elementwise: a live bucket that rolls at `boundary` (it ends there and rolls)."""
    return np.logical_and(rollable, valid_until == boundary)


def expires_at(valid_until, boundary, source):
    """Elementwise: a live bucket that is not a source and ends at or before `boundary`."""
    return np.logical_and(np.logical_not(source), valid_until <= boundary)


def in_stash(is_rollover, valid_from, valid_until, boundary, source):
    """Elementwise: a live bucket counted as stash held at `boundary` (a rollover
    bucket valid at T that is not itself rolling now)."""
    return np.logical_and.reduce([is_rollover, np.logical_not(source), valid_from <= boundary,
                                  valid_until > boundary])


def deposit_until(policy: RolloverPolicy, boundary: datetime, calendar: CycleCalendar) -> datetime:
    """When a deposit made at `boundary` expires: N calendar months after it, or the
    boundary N cycles on."""
    if policy.lifetime_months is not None:
        return add_calendar_months(boundary, policy.lifetime_months, calendar.tz)
    return calendar.shift_cycles(boundary, policy.lifetime_cycles or 1)


def deposit_fields(plan: Plan) -> Mapping[str, object]:
    """A deposit's priority and whether it rolls again, by the plan it rolled under."""
    return {"priority": plan.priority(BucketKind.ROLLOVER),
            "rollable": bool(plan.rollover and plan.rollover.rolls_again)}


def out_note(deposit: str) -> str:
    """The note of the source's `rollover_out` entry."""
    return f"carried into {deposit}"


def in_note(source: str) -> str:
    """The note of the deposit's `rollover_in` entry."""
    return f"carried from {source}"
