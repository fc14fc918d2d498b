"""`carryover plan ...`: the plan catalog in the database, and changing a line's plan."""

from __future__ import annotations

import uuid
from datetime import UTC
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from carryover.cli import plan_app
from carryover.cli.common import (
    AtOption,
    JsonOption,
    console,
    engine,
    fail,
    instant,
    print_json,
    run,
    uow,
)
from carryover.domain.plans import Plan, PlanKind
from carryover.domain.units import Unit, format_amount
from carryover.human_time import local_time
from carryover.plan_files import PlanFileError, load_plan_file
from carryover.services.ledger import catalog
from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork


class Effective(StrEnum):
    NOW = "now"
    NEXT_CYCLE = "next-cycle"


def _caps(caps) -> dict | None:
    """A rollover cap per unit (an amount of that unit, or `allowance`)."""
    return None if caps is None else {str(u): c for u, c in sorted(caps.items())}


def plan_dict(plan: Plan) -> dict:
    rollover = plan.rollover
    return {
        "id": plan.id,
        "name": plan.name,
        "kind": str(plan.kind),
        "allowance": {str(u): a for u, a in plan.allowances.items()},
        "priorities": {str(k): v for k, v in sorted(plan.priorities.items(),
                                                     key=lambda kv: (kv[1], kv[0]))},
        "rollover": None if rollover is None else {
            "kinds": sorted(str(k) for k in rollover.kinds),
            "per_cycle_cap": _caps(rollover.per_cycle_cap),
            "stash_cap": _caps(rollover.stash_cap),
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
            "redirect": plan.overage.redirect_url,
        },
        "unlimited": None if plan.unlimited is None else {
            "premium": plan.unlimited.premium_threshold,
            "after_premium": plan.unlimited.after_premium,
            "hotspot": plan.unlimited.hotspot_allowance,
            "hotspot_kbps": plan.unlimited.hotspot_kbps,
        },
        "pack_validity_days": plan.pack_validity_days,
        "topup_mode": str(plan.topup_mode),
        "price": None if plan.price is None else {"amount": str(plan.price.amount),
                                                  "currency": plan.price.currency},
        "self_service": plan.self_service,
    }


def _after_all_data(plan: Plan) -> str:
    """What happens once the line's data is used up; unlimited data is never used up."""
    if Unit.DATA in plan.allowances and plan.allowances[Unit.DATA] is None:
        u = plan.unlimited
        if u is None:
            return "never blocked"
        after = u.after_premium + (f" {u.after_premium_kbps} kbps" if u.after_premium_kbps
                                   else "")
        text = f"never blocked; {after} after {format_amount(u.premium_threshold)}"
        if u.hotspot_allowance is not None:
            text += f"; hotspot {u.hotspot_kbps} kbps after {format_amount(u.hotspot_allowance)}"
        return text
    after = str(plan.overage.action)
    if plan.overage.throttle_kbps:
        after += f" {plan.overage.throttle_kbps} kbps"
    return after


def _per_unit(amounts: dict | None) -> str:
    """{"data": 21474836480} as "data 20GB"; "allowance" and None kept as words."""
    if not amounts:
        return "none"
    return ", ".join(f"{u} {a if isinstance(a, str) else format_amount(a, Unit(u))}"
                     for u, a in amounts.items())


def _shown(plan: Plan, data: dict) -> list[tuple[str, str]]:
    """plan_dict's fields for people: sizes and speeds with their units (--json stays exact)."""
    rows = [("id", plan.id), ("name", plan.name), ("kind", str(plan.kind)),
            ("allowance", _per_unit(data["allowance"])),
            ("price", "-" if plan.price is None
             else f"{plan.price.amount} {plan.price.currency} per "
             + ("pack" if plan.kind is PlanKind.PACK else "cycle")),
            ("priorities", ", ".join(f"{k} {v}" for k, v in data["priorities"].items()))]
    r = data["rollover"]
    if r is None:
        rows.append(("rollover", "none"))
    else:
        lifetime = r["lifetime"]
        rows.append(("rollover", "; ".join([
            "kinds " + ", ".join(r["kinds"]),
            "per cycle cap " + _per_unit(r["per_cycle_cap"]),
            "stash cap " + _per_unit(r["stash_cap"]),
            "lifetime " + ", ".join(f"{v} {k}" for k, v in lifetime.items()),
            "rolls again " + ("yes" if r["rolls_again"] else "no"),
            "forfeit on plan change " + ("yes" if r["forfeit_on_plan_change"] else "no")])))
    o = plan.overage
    overage = str(o.action)
    if o.throttle_kbps:
        overage += f" {o.throttle_kbps} kbps"
    if o.price is not None:
        overage += f" {o.price} {o.currency or ''} per {format_amount(o.increment)}".replace(
            "  ", " ")
    if o.redirect_url:
        overage += f", redirect to {o.redirect_url}"
    if plan.allowances.get(Unit.DATA, 0) is None:
        overage += " (not reached for data: it is unlimited)"
    rows.append(("overage", overage))
    if plan.unlimited is not None:
        u = plan.unlimited
        text = f"premium {format_amount(u.premium_threshold)}, then {u.after_premium}"
        if u.after_premium_kbps:
            text += f" {u.after_premium_kbps} kbps"
        if u.hotspot_allowance is not None:
            text += (f"; hotspot {format_amount(u.hotspot_allowance)}, then "
                     f"{u.hotspot_kbps} kbps")
        rows.append(("unlimited", text))
    if plan.pack_validity_days is not None:
        rows.append(("pack validity", f"{plan.pack_validity_days} days"))
    rows.append(("top-up mode", data["topup_mode"]))
    if plan.description:
        rows.append(("description", plan.description.strip()))
    return rows


def _catalog() -> dict[str, Plan]:
    with UnitOfWork(engine()) as uow:
        return catalog.all_plans(uow)


@plan_app.command("list")
def plan_list(as_json: JsonOption = False) -> None:
    """List the plans in the database: the presets and every plan file loaded."""
    plans = _catalog()
    if as_json:
        print_json([{**plan_dict(p), "version": len(plans.versions(p.id))}
                    for p in plans.values()])
        return
    table = Table(title="Plans (latest versions)")
    for col in ("id", "version", "kind", "allowance", "after all data"):
        table.add_column(col)
    for plan in plans.values():
        allowance = ", ".join(f"{u} {format_amount(a, Unit(u))}"
                              for u, a in plan.allowances.items())
        table.add_row(plan.id, str(len(plans.versions(plan.id))), str(plan.kind), allowance,
                      _after_all_data(plan))
    console.print(table)


def version_dict(row) -> dict:
    """One stored version: its number, source, when it was loaded and from when it is
    in force."""
    if row.next_boundary_after is not None:
        effective = {"next_boundary_after": row.next_boundary_after.isoformat()}
    elif row.effective_at is not None:
        effective = {"at": row.effective_at.isoformat()}
    else:
        effective = "always"
    return {"version": row.version, "source": row.source,
            "recorded_at": row.recorded_at.isoformat(), "effective": effective}


def _effective_text(effective) -> str:
    if effective == "always":
        return "always (the first version)"
    if "at" in effective:
        return f"from {local_time(effective['at'], None)}"
    after = local_time(effective["next_boundary_after"], None)
    return f"from each account's first cycle boundary after {after}"


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[str, typer.Argument(metavar="ID", help="A plan id or a plan file path.")],
    as_json: JsonOption = False,
) -> None:
    """Show one plan: allowance, priorities, rollover, overage, and its versions."""
    versions: list[dict] = []
    if Path(plan_id).suffix in (".yaml", ".yml"):
        try:
            plan = load_plan_file(plan_id)
        except PlanFileError as exc:
            fail(exc.lines)
    else:
        with UnitOfWork(engine()) as uow:
            plans = catalog.all_plans(uow)
            rows = catalog.version_rows(uow, plan_id)
        if plan_id not in plans:
            fail(f"unknown plan {plan_id!r}; `carryover plan list` shows the known ones")
        plan = plans[plan_id]
        by_number = {v.version: v.plan for v in plans.versions(plan_id)}
        versions = [{**version_dict(r), "plan": plan_dict(by_number[r.version])} for r in rows]
    data = plan_dict(plan)
    if versions:
        data["version"] = versions[-1]["version"]
        data["versions"] = versions
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{plan.name} ({plan.id})", show_header=False)
    for key, value in _shown(plan, data):
        table.add_row(key, value)
    console.print(table)
    if versions:
        listing = Table(title=f"Versions of {plan.id}")
        for col in ("version", "source", "loaded", "in force", "allowance"):
            listing.add_column(col)
        for v in versions:
            allowance = ", ".join(f"{u} {format_amount(a, Unit(u))}"
                                  for u, a in v["plan"]["allowance"].items())
            listing.add_row(str(v["version"]), v["source"], local_time(v["recorded_at"], None),
                            _effective_text(v["effective"]), allowance)
        console.print(listing)


@plan_app.command("load")
def plan_load(
    path: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="A plan file "
                                         "(docs/plan-files.md).")],
    effective: Annotated[str, typer.Option(
        "--effective", metavar="WHEN",
        help="When a new version of a known plan id comes into force: next-cycle (each "
             "account's next cycle boundary), now, or a later ISO 8601 instant; all three "
             "after now plus clock_skew_seconds, where inputs may already be billed. A new "
             "plan id is in force at once.")] = "next-cycle",
    as_json: JsonOption = False,
) -> None:
    """Validate a plan file and store it. A plan id is a series of immutable versions: a
    different plan under a known id adds a version (from --effective), the same plan
    changes nothing, and past balances never change."""
    when = instant(None)
    chosen: str | object = effective
    if effective not in (catalog.NEXT_CYCLE, catalog.NOW):
        chosen = instant(effective, "--effective")
        if chosen.tzinfo is None:
            chosen = chosen.replace(tzinfo=UTC)
    eng = engine()
    try:
        with UnitOfWork(eng) as uow:
            loaded = catalog.load_plan(uow, path, when, chosen)
            uow.commit()
    except PlanFileError as exc:
        fail(exc.lines)
    except ValueError as exc:
        fail(str(exc))
    plan = loaded.plan
    if loaded.next_boundary_after is not None:
        effective_out: object = {"next_boundary_after": loaded.next_boundary_after.isoformat()}
    elif loaded.effective_at is not None:
        effective_out = {"at": loaded.effective_at.isoformat()}
    else:
        effective_out = "always"
    if as_json:
        print_json({**plan_dict(plan), "version": loaded.version, "added": loaded.added,
                    "effective": effective_out})
    elif not loaded.added:
        console.print(f"plan [bold]{plan.id}[/bold] unchanged: {path} is version "
                      f"{loaded.version}")
    else:
        console.print(f"loaded plan [bold]{plan.id}[/bold] version {loaded.version} from "
                      f"{path}, in force {_effective_text(effective_out)}")


@plan_app.command("change")
def plan_change(
    line: Annotated[str, typer.Argument(metavar="LINE", help="Line id or MSISDN.")],
    plan: Annotated[str, typer.Argument(metavar="PLAN", help="The new plan's id.")],
    effective: Annotated[Effective, typer.Option(
        help="now: prorated new allowance for the rest of the cycle; next-cycle: at the "
             "next boundary.")],
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a line to another plan, now or at the next cycle."""
    when = instant(at)
    recorded = run(ledger_ops.change_plan, uow(), line, plan,
                   effective.value.replace("-", "_"), when, f"plan-{uuid.uuid4().hex[:12]}")
    if as_json:
        print_json({"line": recorded.line, "plan": plan, "effective": effective.value})
    else:
        console.print(f"line {recorded.line}: plan {plan} ({effective.value})")
