"""Scenario files (docs/scenarios.md): YAML in, a validated `Scenario` out, or every problem.

A scenario describes one account: its timezone and bill-cycle day, its lines and
their plans, an optional family pool, inline plans, and a list of events applied
in arrival order (received_at, else at; ties by position in the file). Instants
without an offset are local to the scenario's timezone.

Problems are collected, not raised one by one: the caller prints one line per
problem naming the file, the event index and the field, and exits 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from carryover.adapters.strict_yaml import load_yaml, read_text
from carryover.domain.advice import DEFAULT_CYCLES, MAX_CYCLES
from carryover.domain.bounds import (
    MAX_SCENARIO_SPAN,
    MIN_INSTANT,
    BoundError,
    check_bucket,
    check_event,
)
from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar, CycleError
from carryover.domain.inputs import (
    DEFAULT_GRACE,
    ChangePlan,
    Gift,
    Input,
    OpenLine,
    SetLimit,
    TopUp,
    Usage,
)
from carryover.domain.plans import Plan, PlanError, plan_from_mapping
from carryover.domain.units import AmountError, Unit, parse_amount

_TOP_KEYS = {"timezone", "bill_cycle_day", "start", "lines", "family", "events", "plans",
             "plan", "grace_hours"}
_EVENT_KEYS = {"at", "line", "usage", "unit", "rating_group", "received_at", "event_id", "topup",
               "valid_days", "change_plan", "effective", "gift_from", "amount", "check", "limit",
               "advise"}
_ACTIONS = ("usage", "topup", "change_plan", "gift_from", "check", "limit")


@dataclass(frozen=True, slots=True)
class Step:
    """One scenario event in arrival order: an input to submit, or a check."""

    index: int  # position in the file's events list
    arrival: datetime
    item: Input | None
    check_lines: tuple[str, ...] = ()
    at: datetime | None = None
    advise: int | None = None  # a check with advice: the complete cycles to use


@dataclass(slots=True)
class Scenario:
    source: str
    calendar: CycleCalendar
    start: datetime
    grace: timedelta
    plans: dict[str, Plan]
    lines: list[str]
    opening: list[Input] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


class ScenarioError(ValueError):
    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{self.source}: {where}: {message}")


def _instant(value: Any, tz, problems: _Problems, where: str) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            problems.add(where, f"{value!r} is not an instant; write 2026-01-05T00:00 "
                                "(local) or with an offset, 2026-01-05T00:00+01:00")
            return None
    else:
        problems.add(where, f"{value!r} is not an instant")
        return None
    if parsed.tzinfo is None:
        # fold=0: an ambiguous local time means its first occurrence.
        parsed = parsed.replace(tzinfo=tz)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        parsed = MIN_INSTANT - timedelta(days=1)  # within a day of 0001-01-01
    if parsed < MIN_INSTANT:
        problems.add(where, f"{value} is before {MIN_INSTANT.date()}, the first instant accepted")
        return None
    return parsed


def load_scenario(path: str | Path, presets: dict[str, Plan]) -> Scenario:
    path = Path(path)
    return parse_scenario(read_text(path, ScenarioError), str(path), presets)


def parse_scenario(text: str, source: str, presets: dict[str, Plan]) -> Scenario:
    problems = _Problems(source)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "file"
        raise ScenarioError([f"{source}: {line}: not valid YAML "
                             f"({getattr(exc, 'problem', exc)})"]) from exc
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: the file must be a mapping with timezone, "
                             "bill_cycle_day, start and events"])
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        problems.add(str(key), "unknown field")
    for key in ("timezone", "bill_cycle_day", "start"):
        if key not in data:
            problems.add(key, "missing field")
    calendar = None
    try:
        calendar = CycleCalendar(data.get("bill_cycle_day", 1), str(data.get("timezone", "UTC")))
    except CycleError as exc:
        problems.add("timezone" if "timezone" in str(exc) else "bill_cycle_day", str(exc))
    if calendar is None or problems.lines:
        raise ScenarioError(problems.lines)
    tz = calendar.tz
    start = _instant(data["start"], tz, problems, "start")

    plans = dict(presets)
    inline = data.get("plans") or []
    if isinstance(inline, dict):
        inline = [{"id": k, **(v or {})} for k, v in inline.items()]
    for i, raw in enumerate(inline):
        try:
            plan = plan_from_mapping(raw)
            plans[plan.id] = plan
        except PlanError as exc:
            for p in exc.problems:
                problems.add(f"plans[{i}].{p.field}", p.message)

    raw_lines = data.get("lines")
    if raw_lines is None:
        raw_lines = {"main": {"plan": data["plan"]} if "plan" in data else {}}
    if not isinstance(raw_lines, dict) or not raw_lines:
        problems.add("lines", "must map line names to {plan: ID}")
        raw_lines = {}
    family = data.get("family") or {}
    if not isinstance(family, dict):
        problems.add("family", "must be a mapping with pool_plan and members")
        family = {}
    members = family.get("members") or []
    if not isinstance(members, list):
        problems.add("family.members", "must be a list of line names")
        members = []
    for m in members:
        if m not in raw_lines:
            problems.add("family.members", f"unknown line {m!r}")

    scenario = Scenario(source, calendar, start, DEFAULT_GRACE, plans, [str(k) for k in raw_lines])
    if "grace_hours" in data:
        hours = data["grace_hours"]
        if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
            problems.add("grace_hours", f"{hours!r} is not a whole number of hours")
        else:
            scenario.grace = timedelta(hours=hours)
    if start is not None:
        pool_plan = family.get("pool_plan")
        if family:
            if pool_plan not in plans:
                problems.add("family.pool_plan", f"unknown plan {pool_plan!r}")
            else:
                scenario.opening.append(OpenLine("open:pool", POOL, start, pool_plan))
        for name, spec in raw_lines.items():
            spec = spec or {}
            if not isinstance(spec, dict):
                problems.add(f"lines.{name}", "must be a mapping such as {plan: ID}")
                continue
            plan_id = spec.get("plan")
            if plan_id is not None and plan_id not in plans:
                problems.add(f"lines.{name}.plan", f"unknown plan {plan_id!r}")
            if plan_id is None and name not in members:
                problems.add(f"lines.{name}.plan", "a line outside the family needs a plan")
            scenario.opening.append(OpenLine(f"open:{name}", str(name), start, plan_id,
                                             member=name in members))
        limits = family.get("limits") or {}
        for name, amount in (limits.items() if isinstance(limits, dict) else []):
            if name not in members:
                problems.add(f"family.limits.{name}", "not a family member")
                continue
            try:
                value = check_bucket("limit", parse_amount(amount, Unit.DATA)[0])
                scenario.opening.append(SetLimit(f"limit:{name}", str(name), start, value))
            except AmountError as exc:
                problems.add(f"family.limits.{name}", str(exc))
            except BoundError as exc:
                problems.add(f"family.limits.{name}", exc.reason)

    events = data.get("events") or []
    if not isinstance(events, list):
        problems.add("events", "must be a list")
        events = []
    steps = []
    for index, raw in enumerate(events):
        step = _event(index, raw, scenario, tz, problems)
        if step is not None:
            steps.append(step)
    steps.sort(key=lambda s: (s.arrival, s.index))
    scenario.steps = steps
    if problems.lines:
        raise ScenarioError(problems.lines)
    return scenario


def _event(index: int, raw: Any, scenario: Scenario, tz, problems: _Problems) -> Step | None:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        problems.add(where, "must be a mapping such as {at: ..., line: ..., usage: 1GB}")
        return None
    before = len(problems.lines)
    for key in sorted(set(raw) - _EVENT_KEYS, key=str):
        problems.add(f"{where}.{key}", "unknown field")
    actions = [a for a in _ACTIONS if a in raw]
    if len(actions) != 1:
        problems.add(where, "needs exactly one of " + ", ".join(_ACTIONS))
        return None
    action = actions[0]
    if "at" not in raw:
        problems.add(f"{where}.at", "missing field")
        return None
    at = _instant(raw["at"], tz, problems, f"{where}.at")
    line = raw.get("line")
    if line is None and len(scenario.lines) == 1:
        line = scenario.lines[0]
    if line is None and action != "check":
        problems.add(f"{where}.line", "missing field (the scenario has several lines)")
    elif line is not None and str(line) not in scenario.lines:
        problems.add(f"{where}.line", f"unknown line {line!r}")
    line = None if line is None else str(line)
    if at is not None and scenario.start is not None and at < scenario.start:
        problems.add(f"{where}.at", f"{raw['at']} is before the scenario's start {scenario.start}")
    if at is not None and scenario.start is not None and at > scenario.start + MAX_SCENARIO_SPAN:
        problems.add(f"{where}.at", f"{raw['at']} is more than {MAX_SCENARIO_SPAN.days} days "
                                    f"after the scenario's start {scenario.start}")
    unit = Unit.DATA
    if "unit" in raw:
        try:
            unit = Unit(raw["unit"])
        except ValueError:
            problems.add(f"{where}.unit", f"{raw['unit']!r} is not data, voice or sms")

    def amount(key: str) -> int | None:
        try:
            return check_event(key, parse_amount(raw[key], unit)[0])
        except KeyError:
            problems.add(f"{where}.{key}", "missing field")
        except AmountError as exc:
            problems.add(f"{where}.{key}", str(exc))
        except BoundError as exc:
            problems.add(f"{where}.{key}", exc.reason)
        return None

    item: Input | None = None
    arrival = at
    ident = str(raw.get("event_id", f"ev{index:06d}"))
    if action == "usage":
        value = amount("usage")
        received = None
        if "received_at" in raw:
            received = _instant(raw["received_at"], tz, problems, f"{where}.received_at")
            if received is not None and at is not None and received < at:
                problems.add(f"{where}.received_at", "is before at")
            arrival = received
        if len(problems.lines) == before:
            item = Usage(ident, line, at, value, unit, raw.get("rating_group"), received)
    elif action == "topup":
        value = amount("topup")
        days = raw.get("valid_days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days <= 0):
            problems.add(f"{where}.valid_days", f"{days!r} is not a whole number above zero")
        if len(problems.lines) == before:
            item = TopUp(ident, line, at, value, unit, days)
    elif action == "change_plan":
        plan_id = raw["change_plan"]
        if plan_id not in scenario.plans:
            problems.add(f"{where}.change_plan", f"unknown plan {plan_id!r}")
        effective = str(raw.get("effective", "now")).replace("-", "_")
        if effective not in ("now", "next_cycle"):
            problems.add(f"{where}.effective", f"{raw.get('effective')!r} is not now or next-cycle")
        if len(problems.lines) == before:
            item = ChangePlan(ident, line, at, plan_id, effective)
    elif action == "gift_from":
        giver = str(raw["gift_from"])
        if giver not in scenario.lines:
            problems.add(f"{where}.gift_from", f"unknown line {giver!r}")
        value = amount("amount")
        if len(problems.lines) == before:
            item = Gift(ident, giver, line, at, value, unit)
    elif action == "limit":
        value = None if raw["limit"] in (None, "none") else amount("limit")
        if len(problems.lines) == before:
            item = SetLimit(ident, line, at, value, unit)
    advise = None
    if "advise" in raw:
        value = raw["advise"]
        if action != "check":
            problems.add(f"{where}.advise", "only a check gives advice (check: true)")
        elif value is True:
            advise = DEFAULT_CYCLES
        elif value is not False and (isinstance(value, bool) or not isinstance(value, int)
                                     or not 1 <= value <= MAX_CYCLES):
            problems.add(f"{where}.advise", f"{value!r} is not true, false or a number of "
                                            f"cycles 1..{MAX_CYCLES}")
        elif value is not False:
            advise = value
    if len(problems.lines) != before or at is None:
        return None
    if action == "check":
        lines = (line,) if line is not None else tuple(scenario.lines)
        return Step(index, at, None, lines, at, advise)
    return Step(index, arrival, item, at=at)
