"""`carryover simulate`: run a scenario through the engine in memory (docs/scenarios.md).

The scenario's steps are submitted to one AccountBook in arrival order. A check
reports what is known at its instant; the timeline records what a person wants
to see happen: usage, rollover deposits, expiries, forfeits, corrections and
QoS changes. A step the engine refuses (a gift from a line with nothing left to
gift, say) is reported as a problem naming the event, like any other bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from carryover.adapters.scenario_file import Scenario, Step
from carryover.domain.advice import advise
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.inputs import ChangePlan, Gift, SetLimit, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.units import Unit, format_amount
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


def _next_change(book: AccountBook, t: datetime) -> datetime | None:
    """The first expiry or cycle boundary at or before t that the book has not applied yet."""
    if book.cycle_end is None:
        return None
    due = [b.valid_until for b in book.buckets.live()
           if b.valid_until is not None and b.valid_until < book.cycle_end]
    first = min(due, default=None)
    if first is not None and first <= t:
        return first
    return book.cycle_end if book.cycle_end <= t else None


class _Timeline:
    """Rows for the book's new entries and for each line's QoS changes, in the order they happen."""

    def __init__(self, scenario: Scenario, book: AccountBook, rows: list[TimelineRow]) -> None:
        self.book = book
        self.rows = rows
        self.seen = len(book.entries)
        self.lines = [line for line in scenario.lines if line != POOL]
        self.qos = {line: "normal" for line in self.lines}

    def entries(self) -> None:
        """A row for each shown entry the book wrote since the last call, at its instant."""
        for entry in self.book.entries[self.seen:]:
            if entry.kind in _SHOWN:
                self.rows.append(TimelineRow(
                    entry.at, entry.owner or "", str(entry.kind),
                    f"{format_amount(entry.amount, entry.unit)} {entry.bucket_id}"
                    + (f" — {entry.note}" if entry.note else "")))
        self.seen = len(self.book.entries)

    def qos_changes(self, stamp: datetime) -> None:
        """A row for each line whose QoS at `stamp` differs from the last one shown."""
        for line in self.lines:
            decision = qos(self.book, line, max(stamp, self.book.until))
            if decision.state != self.qos[line]:
                speed = (f" at {decision.max_downlink_kbps} kbps"
                         if decision.max_downlink_kbps is not None else "")
                self.rows.append(TimelineRow(stamp, line, "qos",
                                             f"{self.qos[line]} -> {decision.state}{speed}"))
                self.qos[line] = decision.state
        self.entries()

    def advance(self, t: datetime) -> None:
        """Let time pass to t one expiry or boundary at a time, each shown at its instant.

        Whatever comes first past a boundary (a check, a usage event, a top-up),
        the deposits, expiries and QoS changes of the boundary are listed at
        the boundary, before the step that crossed it."""
        while (due := _next_change(self.book, t)) is not None:
            before = (len(self.book.entries), self.book.cycle_end, self.book.until)
            self.book.advance_to(due)
            self.entries()
            self.qos_changes(due)
            if (len(self.book.entries), self.book.cycle_end, self.book.until) == before:
                break  # nothing was due after all: never loop


def _available(view: dict) -> str:
    return ", ".join(f"{u} {format_amount(v, Unit(u))}" for u, v in view["available"].items())


def run(scenario: Scenario) -> SimulationResult:
    book = AccountBook(scenario.calendar, scenario.plans, scenario.grace)
    result = SimulationResult(book=book)
    for item in scenario.opening:
        outcome = book.submit(item)
        if outcome.status == "rejected":
            result.problems.append(f"{scenario.source}: {item.id}: {outcome.reason}")
    timeline = _Timeline(scenario, book, result.timeline)
    for step in scenario.steps:
        # Time passes to the step's arrival first: what the boundaries before it did
        # is shown at their instants. A step an event behind them replays as usual.
        timeline.advance(step.arrival)
        if step.item is None:
            for line in step.check_lines:
                view = check(book, line, step.at)
                if step.advise is not None:
                    # Advice at the check's instant from what the book knows then.
                    view["advice"] = advise(book, book.ordered_inputs(), line, step.at,
                                            step.advise)
                result.checks.append(view)
                result.timeline.append(TimelineRow(step.at, line, "check",
                                                   f"available {_available(view)}"))
                if "advice" in view:
                    found = view["advice"]
                    texts = [found["forecast"]["text"]] + [p["text"] for p in found["plans"][:1]]
                    result.timeline.extend(TimelineRow(step.at, line, "advice", text)
                                           for text in texts)
            timeline.entries()
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
        timeline.entries()
        # What a step changes in QoS takes effect when it is known: at its arrival.
        timeline.qos_changes(step.arrival)
    return result
