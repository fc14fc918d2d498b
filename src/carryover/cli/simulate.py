"""`carryover simulate`: a scenario in memory, as a timeline or JSON lines (docs/scenarios.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from carryover.adapters.scenario_file import ScenarioError, load_scenario
from carryover.cli import app
from carryover.cli.common import JsonOption, console, fail
from carryover.human_time import local_time
from carryover.plan_files import load_presets
from carryover.services.scenarios.simulate import run

STYLES = {"check": "bold cyan", "rollover_in": "green", "expire": "yellow",
          "forfeit": "yellow", "qos": "bold red", "adjust": "magenta"}


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO.yaml",
                                             help="A scenario file (docs/scenarios.md).")],
    as_json: JsonOption = False,
) -> None:
    """Run a what-if scenario in memory: one JSON object per line per check with --json,
    a timeline of checks, rollover, expiries and throttling without it."""
    try:
        loaded = load_scenario(scenario, load_presets())
    except ScenarioError as exc:
        fail(exc.lines)
    result = run(loaded)
    if result.problems:
        fail(result.problems)
    if as_json:
        for view in result.checks:
            print(json.dumps(view))
        return
    tz = loaded.calendar.tz
    table = Table(title=f"{scenario.name} — {loaded.calendar.timezone}, "
                        f"cycle day {loaded.calendar.cycle_day}")
    for col in ("local time", "line", "what", "detail"):
        table.add_column(col, overflow="fold")
    for row in result.timeline:
        table.add_row(local_time(row.at, tz), row.line, row.what, row.detail,
                      style=STYLES.get(row.what))
    console.print(table)
