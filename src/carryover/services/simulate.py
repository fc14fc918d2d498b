"""`carryover simulate`: run a scenario through the engine in memory (DESIGN 6).

The scenario's steps are submitted to one AccountBook in arrival order. A check
reports what is known at its instant; the timeline records what a person wants
to see happen: usage, rollover deposits, expiries, forfeits, corrections and
QoS changes. A step the engine refuses (a gift larger than what can be gifted,
say) is reported as a problem naming the event, like any other bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from carryover.adapters.scenario_file import Scenario, Step
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.inputs import ChangePlan, Gift, SetLimit, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.units import format_amount
from carryover.domain.views import check, qos
from carryover.human_time import local_time

_SHOWN = {EntryKind.ROLLOVER_IN, EntryKind.EXPIRE, EntryKind.FORFEIT, EntryKind.ADJUST}


@dataclass(frozen=True, slots=True)
class TimelineRow:
    at: datetime
    line: str
    what: str
    detail: str


@dataclass(slots=True)
class SimulationResult:
    checks: list[dict] = field(default_factory=list)
    timeline: list[TimelineRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    book: AccountBook | None = None


def _describe(step: Step, tz) -> tuple[str, str]:
    item = step.item
    if isinstance(item, Usage):
        late = f", reported {local_time(item.received_at, tz)}" if item.received_at else ""
        group = f" ({item.rating_group})" if item.rating_group else ""
        return "usage", f"{format_amount(item.amount, item.unit)}{group}{late}"
    if isinstance(item, TopUp):
        days = f" for {item.valid_days} days" if item.valid_days else " until cycle end"
        return "top-up", f"{format_amount(item.amount, item.unit)}{days}"
    if isinstance(item, Gift):
        return "gift", f"{format_amount(item.amount, item.unit)} from {item.from_line}"
    if isinstance(item, ChangePlan):
        return "plan change", f"to {item.plan_id} ({item.effective})"
    if isinstance(item, SetLimit):
        return "member limit", format_amount(item.amount, item.unit)
    return "event", ""


def run(scenario: Scenario) -> SimulationResult:
    book = AccountBook(scenario.calendar, scenario.plans, scenario.grace)
    result = SimulationResult(book=book)
    for item in scenario.opening:
        outcome = book.submit(item)
        if outcome.status == "rejected":
            result.problems.append(f"{scenario.source}: {item.id}: {outcome.reason}")
    qos_seen = {line: "normal" for line in scenario.lines}
    for step in scenario.steps:
        if step.item is None:
            for line in step.check_lines:
                view = check(book, line, step.at)
                result.checks.append(view)
                shown = ", ".join(f"{u} {format_amount(v)}" if u == "data" else f"{u} {v}"
                                  for u, v in view["available"].items())
                result.timeline.append(TimelineRow(step.at, line, "check", f"available {shown}"))
            continue
        outcome = book.submit(step.item)
        if outcome.status == "rejected":
            result.problems.append(f"{scenario.source}: events[{step.index}]: {outcome.reason}")
            continue
        what, detail = _describe(step, scenario.calendar.tz)
        if outcome.status == "duplicate":
            what, detail = "duplicate", f"{step.item.id} counted once"
        elif outcome.late:
            detail += " — late: rated at arrival"
        result.timeline.append(TimelineRow(step.at, step.item.line, what, detail))
        for entry in outcome.entries:
            if entry.kind in _SHOWN:
                result.timeline.append(TimelineRow(
                    entry.at, entry.owner or "", str(entry.kind),
                    f"{format_amount(entry.amount, entry.unit)} {entry.bucket_id}"
                    + (f" — {entry.note}" if entry.note else "")))
        for line in scenario.lines:
            if line == POOL:
                continue
            decision = qos(book, line, max(step.at, book.until))
            if decision.state != qos_seen[line]:
                speed = (f" at {decision.max_downlink_kbps} kbps"
                         if decision.max_downlink_kbps is not None else "")
                result.timeline.append(TimelineRow(step.at, line, "qos",
                                                   f"{qos_seen[line]} -> {decision.state}{speed}"))
                qos_seen[line] = decision.state
    return result
