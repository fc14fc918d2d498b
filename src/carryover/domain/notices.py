"""Notification conditions: which notices hold for a line, decided from state alone.

A notice is a condition of a line's data in the current bill cycle that an
operator wants to hear about once per cycle (usage thresholds, throttled or
blocked, rollover credited or expiring, a member's pool limit reached). The
services decide them after every change and write each to the outbox once per
(line, cycle, kind); this module is the decision, with no I/O and no clock.

Two inputs give the same answer:
- facts aggregated by SQL over the stored buckets (store.outbox and
  store.notice_reads, read by services.notify for batches and ingest chunks),
  passed to `line_conditions`;
- an AccountBook already in memory (the single-event path): `notices(book, at,
  stored_closed)` computes the same facts from the book's buckets with
  `owner_facts`. A book holds only the buckets that were open when it was
  loaded (and what it made since), so the caller passes the data buckets
  closed in the store that still count for the current cycle
  (`stored_closed`); a bucket the book has wins over its stored copy.

The facts of an owner (a line, or the family pool), over its data buckets:
- `allowance`: sum of `granted` of allowance buckets overlapping the current
  cycle, closed or not; `allowance_unlimited`: how many of them are unlimited;
- `usable`: 1 when an open bucket is valid at `at` and has something left
  (an unlimited one always has);
- `rollover_credited`: sum of `granted` of rollover buckets that start in the
  current cycle, closed or not;
- `rollover_expiring` / `expiring_until`: what is left of open rollover buckets
  that end within 7 days after `at`, and the first such end.

Usage thresholds: a line's `used` counter against its allowance fires `usage_<pct>`
at each of the line's alert thresholds, percentages a subscriber picks (1 to 100,
at most MAX_THRESHOLDS of them; `alert_thresholds` checks a choice). A line that
picked none has DEFAULT_THRESHOLDS. The picks are stored per line; they come into
the decision as data (`thresholds`), never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from carryover.domain.buckets import POOL, Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.plans import BucketKind, OverageAction, Plan, PlanKind
from carryover.domain.units import Unit

if TYPE_CHECKING:
    from carryover.domain.book import AccountBook

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 5


def usage_kind(percent: int) -> str:
    """The notice kind of a usage threshold: usage_80 for 80 %."""
    return f"usage_{percent}"


THRESHOLDS = tuple((percent, usage_kind(percent)) for percent in DEFAULT_THRESHOLDS)
USAGE_KINDS = frozenset(usage_kind(percent) for percent in range(1, 101))


class ThresholdError(ValueError):
    """A choice of alert thresholds that cannot be kept."""


def alert_thresholds(values: Iterable[object]) -> tuple[int, ...]:
    """A subscriber's choice of alert thresholds, checked: whole percentages from 1 to
    100, one to MAX_THRESHOLDS of them; returned ascending, each once."""
    picked = list(values)
    if not picked:
        raise ThresholdError("pick at least one alert threshold")
    out = set()
    for value in picked:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise ThresholdError(
                f"an alert threshold is a whole percentage from 1 to 100, not {value!r}")
        out.add(value)
    if len(out) > MAX_THRESHOLDS:
        raise ThresholdError(f"at most {MAX_THRESHOLDS} alert thresholds, not {len(out)}")
    return tuple(sorted(out))
EXPIRING_WITHIN = timedelta(days=7)


def _empty() -> dict:
    return {"allowance": 0, "allowance_unlimited": 0, "usable": 0, "rollover_credited": 0,
            "rollover_expiring": 0, "expiring_until": None}


def owner_facts(buckets: Iterable[Bucket], cycle_start: datetime, cycle_end: datetime,
                at: datetime) -> dict[str, dict]:
    """The facts above per owner, over the data buckets among `buckets`."""
    soon = at + EXPIRING_WITHIN
    out: dict[str, dict] = {}
    for b in buckets:
        if b.unit is not Unit.DATA:
            continue
        facts = out.setdefault(b.owner, _empty())
        if (b.kind is BucketKind.ALLOWANCE and b.valid_from < cycle_end
                and (b.valid_until is None or b.valid_until > cycle_start)):
            if b.granted is None:
                facts["allowance_unlimited"] += 1
            else:
                facts["allowance"] += b.granted
        live = (not b.closed and b.valid_from <= at
                and (b.valid_until is None or b.valid_until > at))
        if live and (b.remaining is None or b.remaining > 0):
            facts["usable"] = 1
        if b.kind is BucketKind.ROLLOVER:
            if cycle_start <= b.valid_from < cycle_end:
                facts["rollover_credited"] += b.granted or 0
            if (not b.closed and b.remaining is not None and b.remaining > 0
                    and b.valid_until is not None and at < b.valid_until <= soon):
                facts["rollover_expiring"] += b.remaining
                until = facts["expiring_until"]
                facts["expiring_until"] = b.valid_until if until is None else min(
                    until, b.valid_until)
    return out


def line_conditions(*, member: bool, plan_id: str | None, pool_plan_id: str | None,
                    data_limit: int | None, spent: int, from_pool: int, own: Mapping,
                    pool: Mapping, plan: Callable[[str], Plan | None],
                    thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
                    ) -> Iterator[tuple[str, dict]]:
    """(kind, numbers) of every condition that holds for one line.

    `spent` and `from_pool` are the line's `used` and `pool` data counters of the
    cycle; `own` and `pool` its facts and (for a member) the pool's, or empty
    mappings; `data_limit` a member's data limit on the pool. Instants in the facts
    are aware. `plan(id)` is the version of a plan in force at the notice's instant
    (None for an unknown id): a version loaded to start next cycle does not decide
    this cycle's throttled/blocked notice. `thresholds`: the line's alert thresholds
    (percentages, ascending)."""
    plan_less_member = member and plan_id is None
    grant = pool if plan_less_member else own
    if grant.get("allowance_unlimited", 0) == 0 and grant.get("allowance", 0) > 0:
        allowance = grant["allowance"]
        for percent in thresholds:
            if spent * 100 >= allowance * percent:
                yield usage_kind(percent), {"used": spent, "allowance": allowance,
                                            "threshold": percent}
    limit = data_limit if member else None
    limit_reached = limit is not None and from_pool >= limit
    if limit_reached:
        yield "member_limit_reached", {"limit": limit, "used_from_pool": from_pool}
    usable = own.get("usable", 0) or (pool.get("usable", 0) and not limit_reached)
    governing = plan_id or (pool_plan_id if member else None)
    # The plan is asked for only here: finding the version in force costs more than
    # every other test of a line, and most lines are not used up.
    in_force = plan(governing) if spent > 0 and not usable and governing else None
    if in_force is not None and in_force.kind is not PlanKind.UNLIMITED:
        action = in_force.overage.action
        if action in (OverageAction.THROTTLE, OverageAction.BLOCK):
            kind = "throttled" if action is OverageAction.THROTTLE else "blocked"
            numbers: dict = {"used": spent, "plan": in_force.id}
            if in_force.overage.throttle_kbps is not None and kind == "throttled":
                numbers["kbps"] = in_force.overage.throttle_kbps
            yield kind, numbers
    credited = own.get("rollover_credited", 0) + pool.get("rollover_credited", 0)
    if credited > 0:
        yield "rollover_credited", {"amount": credited,
                                    "from_pool": pool.get("rollover_credited", 0)}
    expiring = own.get("rollover_expiring", 0) + pool.get("rollover_expiring", 0)
    if expiring > 0:
        ends = [f["expiring_until"] for f in (own, pool) if f.get("expiring_until")]
        yield "rollover_expiring", {"remaining": expiring,
                                    "valid_until": min(ends).astimezone(UTC).isoformat()}


def decided_at(book: AccountBook, at: datetime) -> datetime:
    """The instant an account's notices are decided at: `at`, or where the book stands
    if that is later. An out-of-order input (an event within the grace window, a
    back-dated change) is before the book's current cycle, where that cycle's buckets
    are not valid yet and every line would look used up; the conditions are those of
    the account as it stands, never of an instant of another account or of the past."""
    return book.until if book.until is not None and book.until > at else at


def notices(book: AccountBook, at: datetime, stored_closed: Iterable[Bucket] = (),
            thresholds: Mapping[str, Iterable[int]] | None = None,
            ) -> list[tuple[str, str, dict]]:
    """(line, kind, numbers) of every condition that holds in `book` at `at`, by line id.

    The services ask at `decided_at(book, at)`. `stored_closed`: data buckets closed
    in the store that the book may not hold (see the module docstring). `thresholds`:
    the alert thresholds of the lines that picked some (others have the defaults).
    Nothing holds before the book's first cycle."""
    picked = thresholds or {}
    if book.cycle_start is None or book.cycle_end is None:
        return []
    merged = {b.id: b for b in stored_closed}
    merged.update(book.buckets)
    facts = owner_facts(merged.values(), book.cycle_start, book.cycle_end, at)
    pool_state = book.lines.get(POOL)
    pool_plan_id = pool_state.plan_id if pool_state is not None else None
    out: list[tuple[str, str, dict]] = []
    in_force = plan_in_force(book.plans, at, book.calendar)
    for line in sorted(name for name in book.lines if name != POOL):
        state = book.lines[line]
        for kind, numbers in line_conditions(
                member=state.member, plan_id=state.plan_id, pool_plan_id=pool_plan_id,
                data_limit=state.limits.get(Unit.DATA),
                spent=book.counter(book.cycle_start, line, Unit.DATA, "used"),
                from_pool=book.counter(book.cycle_start, line, Unit.DATA, "pool"),
                own=facts.get(line, {}), pool=facts.get(POOL, {}) if state.member else {},
                plan=in_force, thresholds=picked.get(line, DEFAULT_THRESHOLDS)):
            out.append((line, kind, numbers))
    return out


def plan_in_force(plans: Mapping[str, Plan], at: datetime,
                  calendar: CycleCalendar) -> Callable[[str], Plan | None]:
    """`plan(id)` for `line_conditions`: the version in force at `at` on `calendar`."""
    catalog = PlanCatalog.of(plans)

    def plan(plan_id: str) -> Plan | None:
        return catalog.at(plan_id, at, calendar) if plan_id in catalog else None
    return plan
