"""Read models of a book at an instant: availability, QoS and the check object.

`position(book, at)` gives a book whose state is at `at`: the book itself moved
forward (lazy materialization: docs/semantics.md, "Cycles and rollover at the
boundary instant") when `at` is not in its past, or a replay of what it knows with
effective instant <= at otherwise. Every view then reads that state; none of them
changes a balance.

QoS (docs/semantics.md, "Overage and QoS"): an unlimited plan is `deprioritized`
(or throttled) past its premium threshold and throttles hotspot traffic past the
hotspot allowance; a metered line with nothing left follows its overage policy: `block`, `throttle`
to N kbps, or `charge` (normal service, priced).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL, Bucket
from carryover.domain.inputs import HOTSPOT
from carryover.domain.plans import OverageAction, PlanKind
from carryover.domain.units import Unit


@dataclass(frozen=True, slots=True)
class QosDecision:
    state: str  # normal | deprioritized | throttled | blocked
    max_downlink_kbps: int | None

    def as_dict(self) -> dict:
        return {"state": self.state, "max_downlink_kbps": self.max_downlink_kbps}


def position(book: AccountBook, at: datetime) -> AccountBook:
    if book.until is None or at >= book.until:
        book.advance_to(at)
        return book
    past = AccountBook(book.calendar, book.plans, book.grace)
    for item in book.ordered_inputs():  # the fold's own order
        if book.key(item)[0] > at:  # key[0] is the effective instant
            break
        past.submit(item)
    past.advance_to(at)
    return past


def units_of(book: AccountBook, line: str) -> list[Unit]:
    """Units the line has any grant in: data always, voice and SMS when granted."""
    units = {Unit.DATA}
    for plan in (book.plan_of(line), book.plan_of(POOL) if book.lines[line].member else None):
        if plan is not None:
            units.update(plan.allowances)
    units.update(b.unit for b in book.buckets.values() if b.owner == line)
    return sorted(units, key=list(Unit).index)


def available(book: AccountBook, line: str, unit: Unit, at: datetime) -> int | None:
    """What the line could use at `at` before overage; None when a usable bucket is unlimited.

    The pool part is capped by what remains of the member's limit (docs/scenarios.md,
    "Output")."""
    own = 0
    pool = 0
    for bucket in book.queue(line, unit, at):
        if bucket.unlimited:
            return None
        if bucket.owner == POOL:
            pool += bucket.remaining or 0
        else:
            own += bucket.remaining or 0
    limit = book.lines[line].limits.get(unit)
    if limit is not None:
        taken = book.counter(book.cycle_start, line, unit, "pool")
        pool = min(pool, max(0, limit - taken))
    return own + pool


def limit_reached(book: AccountBook, line: str, unit: Unit) -> bool:
    limit = book.lines[line].limits.get(unit)
    return limit is not None and book.counter(book.cycle_start, line, unit, "pool") >= limit


def qos(book: AccountBook, line: str, at: datetime, rating_group: str | None = None) -> QosDecision:
    """The packet core's answer for `line` at `at` (data)."""
    plan = book.governing_plan(line)
    used = book.counter(book.cycle_start, line, Unit.DATA, "used")
    if plan is not None and plan.kind is PlanKind.UNLIMITED and plan.unlimited is not None:
        policy = plan.unlimited
        hotspot_used = book.counter(book.cycle_start, line, Unit.DATA, "hotspot")
        if (rating_group == HOTSPOT and policy.hotspot_allowance is not None
                and hotspot_used >= policy.hotspot_allowance):
            return QosDecision("throttled", policy.hotspot_kbps)
        if used >= policy.premium_threshold:
            if policy.after_premium == "throttled":
                return QosDecision("throttled", policy.after_premium_kbps)
            return QosDecision("deprioritized", None)
    left = available(book, line, Unit.DATA, at)
    if left is None or left > 0:
        return QosDecision("normal", None)
    pool_plan = book.plan_of(POOL) if book.lines[line].member else None
    if pool_plan is not None and (limit_reached(book, line, Unit.DATA) or plan is None):
        plan = pool_plan  # past its member limit a line gets the pool plan's policy (1.8)
    if plan is None:
        return QosDecision("blocked", 0)
    overage = plan.overage
    if overage.action is OverageAction.THROTTLE:
        return QosDecision("throttled", overage.throttle_kbps)
    if overage.action is OverageAction.CHARGE:
        return QosDecision("normal", None)
    return QosDecision("blocked", 0)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def bucket_dict(bucket: Bucket) -> dict:
    return {
        "id": bucket.id,
        "kind": str(bucket.kind),
        "unit": str(bucket.unit),
        "owner": bucket.owner,
        "remaining": bucket.remaining,
        "valid_from": iso(bucket.valid_from),
        "valid_until": iso(bucket.valid_until),
    }


def check(book: AccountBook, line: str, at: datetime) -> dict:
    """The check object (docs/scenarios.md, "Output") for `line` at `at`, from what `book`
    knows."""
    state = position(book, at)
    units = units_of(state, line)
    buckets: list[dict] = []
    for unit in units:
        buckets.extend(bucket_dict(b) for b in state.queue(line, unit, at))
    start, end = state.calendar.cycle_at(at)
    return {
        "at": iso(at),
        "line": line,
        "available": {str(u): available(state, line, u, at) for u in units},
        "buckets": buckets,
        "qos": qos(state, line, at).as_dict(),
        "cycle": {
            "start": iso(start),
            "end": iso(end),
            "used": {str(u): state.counter(start, line, u, "used") for u in units},
            "overage": {str(u): state.counter(start, line, u, "overage") for u in units},
        },
    }
