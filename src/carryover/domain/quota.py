"""Real-time quota: what a charging session may be granted now, with other grants held.

A grant is a promise to the packet core: it lets that many bytes flow before it
reports again. Promises made to other sessions of the same account, and not yet
reported, used up, released or expired, are *holds*. So that no two sessions can
spend the same bytes, whatever order their usage is reported in, the holds are
checked against the account's buckets as usage would drain them (consumption
order, docs/semantics.md, "Buckets and the consumption order"; a member's pool
draw capped by its limit, docs/semantics.md, "Family pools"): see _Shares
for the rule and why it is safe for every arrival order. What may still be
promised to the line is its *headroom*; the grant is the smaller of what was
asked, the headroom and the operator's maximum grant. Nothing in the book
changes here: holds live beside the book (services.charging stores them), and
used units are rated as ordinary usage events at their own instants, so every
rule of docs/semantics.md applies to them.

When the headroom is gone the plan's overage policy decides (docs/semantics.md,
"Overage and QoS"):
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


INFINITE = 2**62  # larger than any sum of buckets; never written anywhere


class _Shares:
    """Who may draw what at `at`, so that grants hold whatever order usage arrives in.

    Usage drains a line's queue greedily, so a line whose own bucket comes after
    the pool in its queue takes pool bytes first, even bytes promised to another
    member. Holding grants in one fixed order is therefore not enough. Per line:
    `before` is its own bytes ahead of the first pool bucket in its queue,
    `after` its own bytes behind it, `room` what its member limit still lets it
    take from the pool (0 for a line outside the pool). A line holding g bytes
    may draw at most w = min(g - before, room, pool) from the pool in any order.
    The grants are safe for every arrival order when the w of all lines sum to at
    most the pool, and each line's g <= before + w + after (`after` is only
    reachable once that line's own pool draw is capped by its room or by the
    whole pool). Proof sketch: whatever the order, each line finds at least its
    w in the pool, since the others take at most theirs; what it needs beyond
    before + w is in its own `after`.
    """

    def __init__(self, book: AccountBook, at: datetime, holds: Iterable[Hold]) -> None:
        self.book, self.at = book, at
        self.pool = min(INFINITE, sum(INFINITE if b.unlimited else b.remaining or 0
                                      for b in book.own_buckets(POOL, Unit.DATA, at)))
        self.held: dict[str, int] = {}
        for hold in holds:
            self.held[hold.line] = self.held.get(hold.line, 0) + hold.amount
        self._lines: dict[str, tuple[int, int, int]] = {}

    def line(self, line: str) -> tuple[int, int, int]:
        """(before, after, room) of `line`; INFINITE stands for an unlimited bucket."""
        if line not in self._lines:
            before = after = 0
            passed_pool = False
            for bucket in self.book.queue(line, Unit.DATA, self.at):
                if bucket.owner == POOL:
                    passed_pool = True
                    continue
                left = INFINITE if bucket.unlimited else bucket.remaining or 0
                if passed_pool:
                    after = min(INFINITE, after + left)
                else:
                    before = min(INFINITE, before + left)
            room = 0
            if self.book.lines[line].member:
                limit = self.book.lines[line].limits.get(Unit.DATA)
                taken = self.book.counter(self.book.cycle_start, line, Unit.DATA, "pool")
                room = INFINITE if limit is None else max(0, limit - taken)
            self._lines[line] = (before, after, room)
        return self._lines[line]

    def pool_draw(self, line: str, held: int) -> int:
        before, _, room = self.line(line)
        return min(max(0, held - before), room, self.pool)

    def headroom(self, line: str) -> int | None:
        """What may still be granted to `line`; None when that is unlimited."""
        before, after, room = self.line(line)
        others = sum(self.pool_draw(other, amount) for other, amount in self.held.items()
                     if other != line)
        pool_for = max(0, self.pool - others)
        cap = min(room, self.pool)
        most = before + min(cap, pool_for) + (after if cap <= pool_for else 0)
        if most >= INFINITE:
            return None
        return max(0, most - self.held.get(line, 0))

    def grant(self, line: str, amount: int) -> datetime | None:
        """Hold `amount` more for `line`; the earliest end among the buckets it may draw."""
        start = self.held.get(line, 0)
        self.held[line] = start + amount
        ends, reach = None, 0
        room = self.line(line)[2]
        for bucket in self.book.queue(line, Unit.DATA, self.at):
            if reach >= start + amount:
                break
            left = INFINITE if bucket.unlimited else bucket.remaining or 0
            reach += min(left, room) if bucket.owner == POOL else left
            if left and bucket.valid_until is not None and (ends is None
                                                            or bucket.valid_until < ends):
                ends = bucket.valid_until
        return ends


def headroom(book: AccountBook, line: str, at: datetime, holds: Iterable[Hold]) -> int | None:
    """What may still be granted to `line` at `at` beside `holds` (None: unlimited)."""
    return _Shares(book, at, holds).headroom(line)


def decide(book: AccountBook, line: str, at: datetime, requested: int | None,
           rating_group: str | None, holds: Iterable[Hold], policy: QuotaPolicy) -> Grant:
    """The grant for one rating group of a session of `line` at `at` (the book is at `at`)."""
    shares = _Shares(book, at, holds)
    left = shares.headroom(line)
    want = policy.max_grant if not requested else min(requested, policy.max_grant)
    # Whose overage policy applies: governing_plan gives a plan-less member the pool's.
    plan = book.governing_plan(line)
    decision = qos(book, line, at, rating_group)
    validity = policy.validity
    if book.cycle_end is not None:
        validity = min(validity, book.cycle_end - at)
    unlimited_plan = plan is not None and plan.kind is PlanKind.UNLIMITED
    final = redirect = None
    if left is None or unlimited_plan:
        amount = want
    elif left > 0:
        amount = min(want, left)
        ends = shares.grant(line, amount)
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
