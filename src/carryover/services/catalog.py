"""The plan catalog in the database: presets seeded at init, plan files loaded by operators.

Plans are stored as their plan-file mapping and re-validated when read, so a
plan in the database always means what the same YAML means on disk.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path

import yaml

from carryover.domain.plans import Plan
from carryover.plan_files import PlanFileError, parse_plan_text
from carryover.store.uow import UnitOfWork


def preset_bodies() -> dict[str, dict]:
    folder = resources.files("carryover.presets")
    out: dict[str, dict] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            body = yaml.safe_load(item.read_text(encoding="utf-8"))
            out[body["id"]] = body
    return out


def seed_presets(uow: UnitOfWork, at: datetime) -> list[str]:
    """Insert or refresh every preset; plans loaded from files are left alone."""
    sources = uow.plans.sources()
    seeded = []
    for plan_id, body in preset_bodies().items():
        if sources.get(plan_id, "preset") == "preset":
            uow.plans.upsert(plan_id, body, "preset", at)
            seeded.append(plan_id)
    return seeded


def load_plan(uow: UnitOfWork, path: str | Path, at: datetime) -> Plan:
    """Validate a plan file and store it (a later load of the same id replaces it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError([f"{path}: cannot read ({exc.strerror})"]) from exc
    plan = parse_plan_text(text, str(path))
    uow.plans.upsert(plan.id, yaml.safe_load(text), "file", at)
    return plan


def all_plans(uow: UnitOfWork) -> dict[str, Plan]:
    return uow.plans.all()
