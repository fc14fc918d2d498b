"""The plan catalog in the database: presets seeded at init, plan files loaded by operators.

Plans are stored as their plan-file mapping and re-validated when read, so a
plan in the database always means what the same YAML means on disk. A plan id
is a series of immutable versions (docs/semantics.md, "Plan versions"): loading
a different plan under a known id adds a version in force from an instant
(default: each account's next cycle boundary), loading the same plan changes
nothing, and no load ever rewrites what an earlier instant was billed under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from carryover.adapters.strict_yaml import read_text
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.plans import Plan, plan_from_mapping
from carryover.plan_files import PlanFileError, parse_plan_text
from carryover.services.ledger import time_window

if TYPE_CHECKING:
    from carryover.services.ledger.ports import PlansUnit

NEXT_CYCLE = "next-cycle"
NOW = "now"


@dataclass(frozen=True)
class Loaded:
    """What a load did: the plan, its version number, and whether it added one."""

    plan: Plan
    version: int
    added: bool
    effective_at: datetime | None = None  # a fixed start
    next_boundary_after: datetime | None = None  # each account's next boundary after this


def preset_bodies() -> dict[str, dict]:
    folder = resources.files("carryover.presets")
    out: dict[str, dict] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            body = yaml.safe_load(item.read_text(encoding="utf-8"))
            out[body["id"]] = body
    return out


def seed_presets(uow: PlansUnit, at: datetime) -> list[str]:
    """Make sure every shipped preset is in the catalog; one line per thing done.

    A missing preset is added; a preset whose shipped body changed (a new release)
    gets a new version from each account's next cycle boundary; where an operator
    loaded their own version of a preset id, it stays in force and the line says
    so. Nothing is replaced and nothing is dropped silently."""
    catalog = uow.plans.all()
    report = []
    for plan_id, body in preset_bodies().items():
        shipped = plan_from_mapping(body)
        versions = catalog.versions(plan_id)
        if not versions:
            uow.plans.add_version(plan_id, body, "preset", at)
            report.append(f"added preset {plan_id}")
            continue
        latest = versions[-1]
        if latest.plan == shipped:
            continue
        sources = {row.version: row.source for row in uow.plans.version_rows(plan_id)}
        if sources[latest.version] == "preset":
            number = uow.plans.add_version(plan_id, body, "preset", at,
                                           next_boundary_after=written_until(at))
            report.append(f"preset {plan_id}: version {number} from each account's next "
                          f"cycle boundary")
        else:
            report.append(f"preset {plan_id}: the operator's version {latest.version} stays in "
                          f"force; the shipped preset was not loaded over it (load it with "
                          f"`carryover plan load` to switch)")
    return report


def written_until(at: datetime) -> datetime:
    """The latest instant an input already written at `at` may carry: writes may run
    `clock_skew_seconds` ahead of the clock (services/ledger/time_window.py)."""
    return at + time_window.window().skew


def effective_of(effective: str | datetime | None, at: datetime) -> tuple[datetime | None,
                                                                         datetime | None]:
    """(effective_at, next_boundary_after) of a load at `at`: `next-cycle` (default),
    `now`, or a later instant.

    A version must start after every instant the store may already have folded under
    the version in force, or a replay would fold those inputs under the new one and
    rewrite what was billed. Writes reach up to `written_until(at)`, so `now` is the
    first whole second after it, `next-cycle` each account's first boundary after it,
    and an explicit instant must be later than it."""
    horizon = written_until(at)
    if effective is None or effective == NEXT_CYCLE:
        return None, horizon
    if effective == NOW:
        return horizon.replace(microsecond=0) + timedelta(seconds=1), None
    if not isinstance(effective, datetime):
        raise ValueError(f"--effective {effective!r}: give next-cycle, now or an instant")
    if effective <= horizon:
        past = "is in the past" if effective < at else "is within the write window"
        raise ValueError(f"--effective {effective.isoformat()} {past} (now is "
                         f"{at.isoformat()}; inputs up to {horizon.isoformat()}, now plus "
                         "clock_skew_seconds, may already be billed under the version in "
                         "force); a new plan version cannot change what was already billed")
    return effective, None


def load_plan(uow: PlansUnit, path: str | Path, at: datetime,
              effective: str | datetime | None = None) -> Loaded:
    """Validate a plan file and store it: a new id is version 1; a different plan under
    a known id is a new version from `effective`; the same plan is a no-op."""
    path = Path(path)
    text = read_text(path, PlanFileError)
    plan = parse_plan_text(text, str(path))
    effective_at, after = effective_of(effective, at)
    versions = uow.plans.all().versions(plan.id)
    if versions and versions[-1].plan == plan:
        v = versions[-1]
        return Loaded(v.plan, v.version, False, v.effective_at, v.next_boundary_after)
    number = uow.plans.add_version(plan.id, yaml.safe_load(text), "file", at, effective_at,
                                   after)
    if number == 1:
        effective_at = after = None
    return Loaded(plan, number, True, effective_at, after)


def all_plans(uow: PlansUnit) -> PlanCatalog:
    return uow.plans.all()


def version_rows(uow: PlansUnit, plan_id: str) -> list:
    return uow.plans.version_rows(plan_id)
