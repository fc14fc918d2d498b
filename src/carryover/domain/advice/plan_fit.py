"""Plan fit: the line's real usage of its last N complete cycles replayed on each plan.

Every candidate (the current plan and each plan with the same unit kinds, packs
only against packs) gets a fresh book that opens the line on it at the start of
the window, with a full first allowance and no stash, and folds the line's usage,
every unit of it (domain/book.py, the one fold); QoS is asked of domain/views.qos. So the
figures are what `carryover simulate` of the same usage on that plan reports.

Speed without a second copy of the rules: between two instants where the buckets
change for another reason than usage (a boundary, an expiry), usage drains a
queue that does not change, so one event carrying the sum of several gives the
same balances as the events one by one (domain/rating.py). QoS can change only
once in such a stretch, at the first event whose cumulative use reaches what was
left (high-speed data, or an unlimited plan's premium threshold): that event is
submitted on its own, at its instant, and the events before and after it as one
event each. Time throttled or blocked is the time between QoS changes.

Ranking, best first: least time throttled or blocked, then lowest `price_total`
(plans without a price after priced ones; currencies are not converted: by code,
then amount), then id. `switch` says whether moving now beats waiting for the
next cycle: `now` when a change now leaves at least as much to use as there is
(the new plan's prorated allowance against what the change forfeits).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from carryover.domain.advice.fork import booked, fork, instant
from carryover.domain.advice.profile import LineUsage
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import DEFAULT_GRACE, ChangePlan, OpenLine, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import Plan, PlanKind
from carryover.domain.statement import overage_charge
from carryover.domain.units import Unit, format_amount
from carryover.domain.views import available, qos

BAD_STATES = ("throttled", "blocked")


def candidates(plans: Mapping[str, Plan], current: Plan) -> list[str]:
    """Plan ids the line may move to: the same unit kinds, packs only against packs."""
    units = set(current.allowances)
    pack = current.kind is PlanKind.PACK
    return sorted(pid for pid, p in plans.items()
                  if set(p.allowances) == units and (p.kind is PlanKind.PACK) == pack)


def high_speed_left(book: AccountBook, line: str, at: datetime) -> int | None:
    """Bytes of high-speed data left at `at`, i.e. of use before QoS would change
    (None: nothing limits them)."""
    bounds = []
    left = available(book, line, Unit.DATA, at)
    if left is not None:
        bounds.append(left)
    plan = book.governing_plan(line)
    if plan is not None and plan.kind is PlanKind.UNLIMITED and plan.unlimited is not None:
        used = book.counter(book.cycle_start, line, Unit.DATA, "used")
        bounds.append(max(0, plan.unlimited.premium_threshold - used))
    return min(bounds, default=None)


def _next_change(book: AccountBook, until: datetime) -> datetime:
    due = [b.valid_until for b in book.buckets.live()
           if b.valid_until is not None and b.valid_until < book.cycle_end]
    return min([*due, book.cycle_end, until])


def replay(plans: Mapping[str, Plan], plan_id: str, calendar: CycleCalendar, line: str,
           usage: LineUsage, window: list[tuple[datetime, datetime]],
           grace: timedelta = DEFAULT_GRACE,
           others: Mapping[Unit, LineUsage] | None = None) -> dict:
    """The figures of `plan_id` over `window` (complete cycles, oldest first); `others`:
    the line's voice and SMS usage, folded too (they move no QoS: one event per unit
    and stretch, at its start, before the stretch's data)."""
    first, last = window[0][0], window[-1][1]
    book = AccountBook(calendar, plans, grace)
    book.submit(OpenLine("advice:open", line, first, plan_id))
    spent: defaultdict[str, timedelta] = defaultdict(timedelta)
    state = qos(book, line, first).state
    since = first
    points, cum, instants = usage.points, usage.cumulative, usage.instants

    def submit(n: int, lo: int, hi: int) -> None:
        nonlocal state, since
        amount = cum[hi] - cum[lo]
        if amount <= 0:
            return
        p = points[hi - 1]
        book.submit(Usage(f"advice:{n}:{points[lo].id}", line, p.at, amount, Unit.DATA))
        spent[state] += p.at - since
        state, since = qos(book, line, p.at).state, p.at

    index = bisect_left(instants, first)
    n = 0
    t = first
    while t < last:
        stop = _next_change(book, last)
        for unit, used in sorted((others or {}).items(), key=lambda kv: list(Unit).index(kv[0])):
            amount = used.between(t, stop)
            if amount > 0:
                book.submit(Usage(f"advice:{unit}:{n}", line, t, amount, unit))
        end = bisect_left(instants, stop, index)
        left = high_speed_left(book, line, t)
        cross = end
        if left is not None and left > 0 and end > index:
            # First event whose cumulative use in this stretch reaches `left`.
            cross = min(end, bisect_left(cum, cum[index] + left, index + 1, end + 1) - 1)
        if cross < end:
            submit(n, index, cross)
            submit(n + 1, cross, cross + 1)
            submit(n + 2, cross + 1, end)
        else:
            submit(n, index, end)
        n += 3
        index = end
        book.advance_to(stop)
        spent[state] += stop - since
        state, since, t = qos(book, line, stop).state, stop, stop
    seconds = {k: v // timedelta(seconds=1) for k, v in spent.items()}
    return _figures(book, plans[plan_id], plan_id, calendar, line, window, seconds)


def _figures(book: AccountBook, plan: Plan, plan_id: str, calendar: CycleCalendar, line: str,
             window: list[tuple[datetime, datetime]], seconds: dict[str, int]) -> dict:
    by_unit: dict[str, int] = {}
    charged: Decimal | None = None
    for start, _ in window:
        version = book.plans.at(plan_id, start, calendar)
        for unit in Unit:  # each unit charged on its own, as its statement charges it
            over = book.counter(start, line, unit, "overage")
            if over or unit is Unit.DATA:
                by_unit[str(unit)] = by_unit.get(str(unit), 0) + over
            charge = overage_charge(over, version)
            if charge is not None:
                charged = (charged or Decimal(0)) + charge
    overage = by_unit[str(Unit.DATA)]
    version = [book.plans.at(plan_id, start, calendar) for start, _ in window]
    prices = [v.price for v in version]
    price_total = None
    currency = None
    if all(p is not None for p in prices) and len({p.currency for p in prices}) == 1:
        currency = prices[0].currency
        count = 1 if plan.kind is PlanKind.PACK else len(window)
        total = sum((p.amount for p in prices[:count]), Decimal(0))
        if charged is not None and plan.overage.currency != currency:
            total = None  # not converted between currencies
        elif charged is not None:
            total += charged
        price_total = total
    first, last = window[0][0], window[-1][1]
    kept = sum(e.amount for e in book.entries if e.kind is EntryKind.ROLLOVER_IN
               and e.owner == line and e.unit is Unit.DATA and first < e.at <= last)
    return {
        "kind": "plan_fit",
        "plan": plan_id,
        "cycles": len(window),
        "price_total": None if price_total is None else str(price_total),
        "currency": currency if price_total is not None else None,
        "overage": overage,
        "overage_by_unit": by_unit,
        "overage_charged": None if charged is None else str(charged),
        "seconds_throttled": seconds.get("throttled", 0),
        "seconds_blocked": seconds.get("blocked", 0),
        "seconds_deprioritized": seconds.get("deprioritized", 0),
        "rollover_kept": kept,
        "current": False,
    }


def rank_key(item: dict) -> tuple:
    """Best first: least time throttled or blocked, then price (unpriced last), then id."""
    price = item["price_total"]
    return (item["seconds_throttled"] + item["seconds_blocked"], price is None,
            item["currency"] or "", Decimal(price) if price is not None else Decimal(0),
            item["plan"])


def switch(book: AccountBook, line: str, plan_id: str, at: datetime) -> dict:
    """What moving to `plan_id` at `at` would forfeit, and whether now beats next cycle."""
    what_if = fork(book)
    t = instant(what_if, at)
    before = available(book, line, Unit.DATA, t)
    what_if.submit(ChangePlan("advice:switch", line, t, plan_id, "now"))
    after = available(what_if, line, Unit.DATA, t)
    forfeits = booked(what_if, EntryKind.FORFEIT, line=line)
    now = after is None or (before is not None and after >= before)
    return {"switch": "now" if now else "next_cycle", "forfeits_now": forfeits}


def fit(book: AccountBook, line: str, at: datetime, usage: LineUsage,
        window: list[tuple[datetime, datetime]],
        others: Mapping[Unit, LineUsage] | None = None) -> list[dict]:
    """Every candidate's figures, best first; `book` is positioned at `at`."""
    state = book.lines.get(line)
    current_id = state.plan_id if state is not None else None
    if current_id is None or not window:
        return []
    current = book.plan(current_id)
    items = []
    for pid in candidates(book.plans, current):
        item = replay(book.plans, pid, book.calendar, line, usage, window, book.grace, others)
        item["current"] = pid == current_id
        item.update({"switch": None, "forfeits_now": None} if item["current"]
                    else switch(book, line, pid, at))
        items.append(item)
    items.sort(key=rank_key)
    for item in items:
        item["text"] = _text(item, len(window))
    return items


def _text(item: dict, cycles: int) -> str:
    bad = item["seconds_throttled"] + item["seconds_blocked"]
    price = ("no price given" if item["price_total"] is None
             else f"{item['price_total']} {item['currency']}")
    slow = "never throttled or blocked" if not bad else f"{_hours(bad)} throttled or blocked"
    text = (f"On {item['plan']}{' (current)' if item['current'] else ''} your last {cycles} "
            f"cycle{'s' if cycles != 1 else ''} would cost {price}, {slow}, "
            f"with {format_amount(item['rollover_kept'])} rolled over")
    if not item["current"]:
        text += ("; switch now" if item["switch"] == "now" else
                 f"; switch at the next cycle (now would forfeit "
                 f"{format_amount(item['forfeits_now'])})")
    return text + "."


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds} s"

