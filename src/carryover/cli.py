"""The `carryover` command line: thin commands over services, Rich for people, --json for scripts.

Bad input exits with status 2 and one line per problem on stderr (file, event,
field, why); never a traceback. Every command that prints results takes --json.
The reference in docs/cli.md is generated from this app's --help (see
carryover.docs_cli) and a test fails when the two drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from carryover.adapters.scenario_file import ScenarioError, load_scenario
from carryover.domain.plans import Plan
from carryover.domain.units import Unit, format_amount
from carryover.plan_files import PlanFileError, load_plan_file, load_presets
from carryover.services.simulate import run

app = typer.Typer(
    name="carryover",
    help="Exact balances for eSIM mobile plans: allowances, rollover, top-ups, unlimited "
         "caps and family pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plan_app = typer.Typer(help="List and inspect plans (presets and plan files).",
                       no_args_is_help=True)
app.add_typer(plan_app, name="plan")

console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(lines: list[str]) -> None:
    """Report bad input, one problem a line, and exit 2."""
    for line in lines:
        # Plain print: Rich would wrap a long path mid-line, and scripts grep these lines.
        print(line, file=sys.stderr)
    raise typer.Exit(2)


def _plan_dict(plan: Plan) -> dict:
    rollover = plan.rollover
    return {
        "id": plan.id,
        "name": plan.name,
        "kind": str(plan.kind),
        "allowance": {str(u): a for u, a in plan.allowances.items()},
        "priorities": {str(k): v for k, v in sorted(plan.priorities.items(), key=lambda kv: kv[1])},
        "rollover": None if rollover is None else {
            "kinds": sorted(str(k) for k in rollover.kinds),
            "per_cycle_cap": "allowance" if rollover.cap_is_allowance else rollover.per_cycle_cap,
            "stash_cap": rollover.stash_cap,
            "lifetime": ({"months": rollover.lifetime_months} if rollover.lifetime_months
                         else {"cycles": rollover.lifetime_cycles}),
            "rolls_again": rollover.rolls_again,
            "forfeit_on_plan_change": rollover.forfeit_on_plan_change,
        },
        "overage": {
            "action": str(plan.overage.action),
            "kbps": plan.overage.throttle_kbps,
            "price": None if plan.overage.price is None else str(plan.overage.price),
            "currency": plan.overage.currency,
            "per": plan.overage.increment if plan.overage.price is not None else None,
        },
        "unlimited": None if plan.unlimited is None else {
            "premium": plan.unlimited.premium_threshold,
            "after_premium": plan.unlimited.after_premium,
            "hotspot": plan.unlimited.hotspot_allowance,
            "hotspot_kbps": plan.unlimited.hotspot_kbps,
        },
        "pack_validity_days": plan.pack_validity_days,
        "topup_mode": str(plan.topup_mode),
    }


@plan_app.command("list")
def plan_list(as_json: JsonOption = False) -> None:
    """List the plans carryover knows (the presets that ship with it)."""
    plans = load_presets()
    if as_json:
        print(json.dumps([_plan_dict(p) for p in plans.values()], indent=2))
        return
    table = Table(title="Plans")
    for col in ("id", "kind", "allowance", "after all data"):
        table.add_column(col)
    for plan in plans.values():
        allowance = ", ".join(f"{u} {format_amount(a, Unit(u))}"
                              for u, a in plan.allowances.items())
        after = str(plan.overage.action)
        if plan.overage.throttle_kbps:
            after += f" {plan.overage.throttle_kbps} kbps"
        table.add_row(plan.id, str(plan.kind), allowance, after)
    console.print(table)


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="A preset id or a plan file path.")],
    as_json: JsonOption = False,
) -> None:
    """Show one plan: allowance, priorities, rollover, overage."""
    plans = load_presets()
    if plan_id in plans:
        plan = plans[plan_id]
    elif Path(plan_id).suffix in (".yaml", ".yml"):
        try:
            plan = load_plan_file(plan_id)
        except PlanFileError as exc:
            fail(exc.lines)
    else:
        fail([f"unknown plan {plan_id!r}; `carryover plan list` shows the known ones"])
    data = _plan_dict(plan)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title=f"{plan.name} ({plan.id})", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


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
    styles = {"check": "bold cyan", "rollover_in": "green", "expire": "yellow",
              "forfeit": "yellow", "qos": "bold red", "adjust": "magenta"}
    for row in result.timeline:
        table.add_row(row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), row.line, row.what,
                      row.detail, style=styles.get(row.what))
    console.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
