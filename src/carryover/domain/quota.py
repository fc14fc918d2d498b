"""Real-time quota: what a charging session may be granted now, with other grants held.

A grant is a promise to the packet core: it lets that many bytes flow before it
reports again. Promises made to other sessions of the same account, and not yet
reported, used up, released or expired, are *holds*. So that no two sessions can
spend the same bytes, a hold is taken out of the account's buckets exactly as
usage would take it: through a copy of the buckets, in consumption order (DESIGN
1.3), a member's pool draw capped by what is left of its limit (1.8), holds in
the order they were granted. What the line could still use after that is its
*headroom*; the grant is the smaller of what was asked, the headroom and the
operator's maximum grant. Nothing in the book changes here: holds live beside
the book (services.charging stores them), and used units are rated as ordinary
usage events at their own instants, so every rule of DESIGN 1 applies to them.

When the headroom is gone the plan's overage policy decides (DESIGN 1.7):
`block` refuses with QUOTA_LIMIT_REACHED (and a final-unit action telling the
core what to do: terminate, or redirect to the plan's top-up page); `throttle`
and `charge` keep granting, since the line keeps service (throttled or priced)
and its usage becomes overage. A grant that takes the last byte of a blocking
plan carries the final-unit indication. Unlimited buckets and unlimited plans
grant the maximum; their QoS decision (deprioritized, throttled) goes with it.

A grant is valid until the earliest of: the configured validity, the end of the
cycle (so the core comes back at the boundary and gets the new cycle's
allowance and rollover), and the end of the first bucket it draws from that
expires earlier (a pass ending mid-session).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.plans import OverageAction, Plan, PlanKind
from carryover.domain.units import Unit
from carryover.domain.views import QosDecision, qos

SUCCESS = "SUCCESS"
QUOTA_LIMIT_REACHED = "QUOTA_LIMIT_REACHED"


@dataclass(frozen=True, slots=True)
class Hold:
    """Bytes granted to a session of `line` and not yet reported or given back."""

    line: str
    amount: int


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """The operator's settings for grants."""

    max_grant: int  # bytes; also the grant of unlimited plans
    threshold_percent: int  # volumeQuotaThreshold as a share of the grant
    validity: timedelta  # the longest validityTime


@dataclass(frozen=True, slots=True)
class Grant:
    result: str  # SUCCESS | QUOTA_LIMIT_REACHED
    amount: int  # bytes granted; 0 when refused
    validity_seconds: int
    threshold: int | None  # bytes: report when this much of the grant is left
    final_action: str | None  # TERMINATE | REDIRECT when this is the line's last data
    redirect_url: str | None
    qos: QosDecision

    def as_dict(self) -> dict:
        return {"result": self.result, "amount": self.amount,
                "validity_seconds": self.validity_seconds, "threshold": self.threshold,
                "final_action": self.final_action, "redirect_url": self.redirect_url,
                "qos": self.qos.as_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Grant:
        return cls(data["result"], data["amount"], data["validity_seconds"], data["threshold"],
                   data["final_action"], data["redirect_url"],
                   QosDecision(data["qos"]["state"], data["qos"]["max_downlink_kbps"]))


class _Draw:
    """Remaining bytes per bucket and pool bytes per member, after the holds so far."""

    def __init__(self, book: AccountBook, at: datetime) -> None:
        self.book, self.at = book, at
        self.left: dict[str, int] = {}
        self.pool_held: dict[str, int] = {}

    def _pool_room(self, line: str) -> int | None:
        limit = self.book.lines[line].limits.get(Unit.DATA)
        if limit is None:
            return None
        taken = self.book.counter(self.book.cycle_start, line, Unit.DATA, "pool")
        return max(0, limit - taken - self.pool_held.get(line, 0))

    def take(self, line: str, amount: int) -> tuple[int, datetime | None]:
        """Take up to `amount` in consumption order: (bytes taken, earliest end drawn from).

        An unlimited bucket absorbs whatever reaches it."""
        taken, ends = 0, None
        room = self._pool_room(line)
        for bucket in self.book.queue(line, Unit.DATA, self.at):
            if taken >= amount:
                break
            if bucket.unlimited:
                return amount, ends
            left = self.left.get(bucket.id, bucket.remaining or 0)
            if bucket.owner == POOL and room is not None:
                left = min(left, room)
            part = min(left, amount - taken)
            if part <= 0:
                continue
            self.left[bucket.id] = self.left.get(bucket.id, bucket.remaining or 0) - part
            if bucket.owner == POOL:
                self.pool_held[line] = self.pool_held.get(line, 0) + part
                if room is not None:
                    room -= part
            taken += part
            if bucket.valid_until is not None and (ends is None or bucket.valid_until < ends):
                ends = bucket.valid_until
        return taken, ends

    def headroom(self, line: str) -> int | None:
        """What `line` could still use; None when an unlimited bucket is in its queue."""
        own = pool = 0
        for bucket in self.book.queue(line, Unit.DATA, self.at):
            if bucket.unlimited:
                return None
            left = self.left.get(bucket.id, bucket.remaining or 0)
            if bucket.owner == POOL:
                pool += left
            else:
                own += left
        room = self._pool_room(line)
        return own + (pool if room is None else min(pool, room))


def overage_plan(book: AccountBook, line: str) -> Plan | None:
    """The plan whose overage policy applies when the line has nothing left (as views.qos)."""
    plan = book.governing_plan(line)
    state = book.lines[line]
    if state.member and plan is None:
        return book.plan_of(POOL)
    return plan


def headroom(book: AccountBook, line: str, at: datetime, holds: Iterable[Hold]) -> int | None:
    """What `line` could use at `at` once `holds` are taken out of the buckets."""
    draw = _Draw(book, at)
    for hold in holds:
        draw.take(hold.line, hold.amount)
    return draw.headroom(line)


def decide(book: AccountBook, line: str, at: datetime, requested: int | None,
           rating_group: str | None, holds: Iterable[Hold], policy: QuotaPolicy) -> Grant:
    """The grant for one rating group of a session of `line` at `at` (the book is at `at`)."""
    draw = _Draw(book, at)
    for hold in holds:
        draw.take(hold.line, hold.amount)
    left = draw.headroom(line)
    want = policy.max_grant if not requested else min(requested, policy.max_grant)
    plan = overage_plan(book, line)
    decision = qos(book, line, at, rating_group)
    validity = policy.validity
    if book.cycle_end is not None:
        validity = min(validity, book.cycle_end - at)
    unlimited_plan = plan is not None and plan.kind is PlanKind.UNLIMITED
    final = redirect = None
    if left is None or unlimited_plan:
        amount = want
    elif left > 0:
        amount, ends = draw.take(line, min(want, left))
        if ends is not None:
            validity = min(validity, ends - at)
        if amount == left and _blocks(plan):
            final, redirect = _final_unit(plan)
    elif _blocks(plan):
        final, redirect = _final_unit(plan)
        return Grant(QUOTA_LIMIT_REACHED, 0, _seconds(validity), None, final, redirect,
                     QosDecision("blocked", 0))
    else:
        # Throttled or priced service goes on: the grant becomes overage when used.
        amount = want
        if plan is not None and plan.overage.action is OverageAction.THROTTLE:
            decision = QosDecision("throttled", plan.overage.throttle_kbps)
    threshold = amount * policy.threshold_percent // 100 if amount else None
    return Grant(SUCCESS, amount, _seconds(validity), threshold, final, redirect, decision)


def _blocks(plan: Plan | None) -> bool:
    return plan is None or plan.overage.action is OverageAction.BLOCK


def _final_unit(plan: Plan | None) -> tuple[str, str | None]:
    if plan is not None and plan.overage.redirect_url:
        return "REDIRECT", plan.overage.redirect_url
    return "TERMINATE", None


def _seconds(validity: timedelta) -> int:
    return max(1, int(validity.total_seconds()))
