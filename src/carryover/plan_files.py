"""Plan files and the preset catalog: YAML on disk in, `Plan` values out.

The plan-file format is documented in docs/plan-files.md; the presets that ship
with the package are plan files in `carryover/presets/`. Reading files is I/O,
so it lives here and not in the pure domain, which only sees mappings.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from carryover.adapters.strict_yaml import load_yaml, read_text
from carryover.domain.plans import Plan, PlanError, PlanProblem, plan_from_mapping


class PlanFileError(ValueError):
    """A plan file that cannot be used; `lines` says what is wrong, one problem a line."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def parse_plan_text(text: str, source: str) -> Plan:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise PlanFileError([f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    try:
        return plan_from_mapping(data)
    except PlanError as exc:
        raise PlanFileError([f"{source}: {p}" for p in exc.problems]) from exc


def load_plan_file(path: str | Path) -> Plan:
    path = Path(path)
    return parse_plan_text(read_text(path, PlanFileError), str(path))


def load_presets() -> dict[str, Plan]:
    """Every preset shipped with the package, by id, in id order."""
    plans: dict[str, Plan] = {}
    folder = resources.files("carryover.presets")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            plan = parse_plan_text(item.read_text(encoding="utf-8"), f"presets/{item.name}")
            plans[plan.id] = plan
    return plans


__all__ = ["PlanError", "PlanFileError", "PlanProblem", "load_plan_file", "load_presets",
           "parse_plan_text"]
