"""Operator commands: init, accounts, lines, usage, top-ups, family, balance, statement, QoS."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from carryover.cli import account_app, app, family_app, line_app, usage_app
from carryover.cli.common import (
    AtOption,
    JsonOption,
    amount,
    app_object,
    console,
    engine,
    fail,
    instant,
    now,
    print_json,
    run,
    uow,
)
from carryover.cli.render import statement_tables
from carryover.domain.bounds import MAX_BUCKET
from carryover.domain.units import Unit, format_amount
from carryover.human_time import local_time
from carryover.services.ledger import catalog, directory, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.store.schema import current_revision
from carryover.store.uow import UnitOfWork

LineArg = Annotated[str, typer.Argument(metavar="LINE", help="Line id, MSISDN or IMSI.")]


class UnitChoice(StrEnum):
    DATA = "data"
    VOICE = "voice"
    SMS = "sms"


def positive(size: int, what: str) -> int:
    """Refuse a zero amount where it would add nothing (as the API does, with exit 2)."""
    if size <= 0:
        fail(f"AMOUNT: {what} of {format_amount(size)} adds nothing; give an amount above 0")
    return size


def _ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@app.command()
def init(as_json: JsonOption = False) -> None:
    """Create or migrate the database schema and load the presets."""
    carry = app_object()
    eng = engine()
    revision = current_revision(eng)
    # Every shipped preset is in the catalog afterwards; an operator's own version of a
    # preset id stays in force, and the report says so (docs/plan-files.md).
    with UnitOfWork(eng) as uow:
        presets = catalog.seed_presets(uow, now())
        uow.commit()
    if as_json:
        print_json({"database": carry.settings.redacted_url(), "revision": revision,
                    "presets": presets})
    else:
        console.print(f"database ready: {carry.settings.redacted_url()} (schema {revision})")
        for line in presets:
            console.print(line)


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    cycle_day: Annotated[int, typer.Option("--cycle-day", metavar="D",
                                           help="Bill-cycle day, 1..31.")],
    timezone: Annotated[str, typer.Option("--timezone", metavar="TZ",
                                          help="IANA timezone, e.g. America/New_York.")],
    pool_plan: Annotated[str | None, typer.Option(
        "--pool-plan", metavar="ID", help="Make a family account whose lines share this "
        "plan's pool.")] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account; with --pool-plan its lines draw from a shared family pool."""
    account_id = run(provisioning.create_account, uow(), name, cycle_day, timezone,
                     instant(at), pool_plan, app_object().grace)
    if as_json:
        print_json({"id": account_id, "name": name, "cycle_day": cycle_day,
                    "timezone": timezone, "pool_plan": pool_plan})
    else:
        console.print(f"account {name} created (id {account_id})")


LimitOption = Annotated[int, typer.Option("--limit", metavar="N", min=1, max=10000,
                                          help="At most N per page.")]


def _page_hint(command: str, last: str | None, console_out) -> None:
    if last is not None:
        console_out.print(f"more: {command} --after {last}", highlight=False)


@account_app.command("list")
def account_list(
    timezone: Annotated[str | None, typer.Option("--timezone", metavar="TZ",
                                                 help="Only accounts in this timezone.")] = None,
    family: Annotated[bool | None, typer.Option(
        "--family/--no-family", help="Only family accounts (with a pool), or only others.")]
        = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="NAME", help="Start after this account name (the next page).")]
        = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """List accounts by name, a page at a time (--after the last one shown for the next)."""
    items, last = run(directory.accounts_page, uow(), after, limit, timezone, family)
    if as_json:
        print_json({"items": items, "next_after": last})
        return
    table = Table(title="Accounts")
    table.add_column("name", no_wrap=True)
    for col in ("cycle day", "timezone", "pool plan", "lines", "created"):
        table.add_column(col, overflow="fold")
    for a in items:
        table.add_row(a["name"], str(a["cycle_day"]), a["timezone"], a["pool_plan"] or "-",
                      str(a["lines"]), local_time(a["created_at"], a["timezone"]))
    console.print(table)
    _page_hint("carryover account list", last, console)


@line_app.command("list")
def line_list(
    account: Annotated[str | None, typer.Option("--account", metavar="NAME",
                                                help="Only this account's lines.")] = None,
    plan: Annotated[str | None, typer.Option("--plan", metavar="ID",
                                             help="Only lines on this plan.")] = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="ID", help="Start after this line id (the next page).")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """List lines by id, a page at a time (--after the last one shown for the next)."""
    items, last = run(directory.lines_page, uow(), after, limit, None, account, plan)
    if as_json:
        print_json({"items": items, "next_after": last})
        return
    table = Table(title="Lines")
    table.add_column("id", no_wrap=True)
    for col in ("account", "msisdn", "imsi", "plan", "member", "opened"):
        table.add_column(col, overflow="fold")
    for ln in items:
        table.add_row(ln["id"], ln["account"], ln["msisdn"] or "-", ln["imsi"] or "-",
                      ln["plan"] or "-", "yes" if ln["member"] else "no",
                      local_time(ln["opened_at"], None))
    console.print(table)
    _page_hint("carryover line list", last, console)


@line_app.command("create")
def line_create(
    account: Annotated[str, typer.Option("--account", metavar="NAME")],
    msisdn: Annotated[str, typer.Option("--msisdn", metavar="E164")],
    imsi: Annotated[str | None, typer.Option("--imsi", metavar="IMSI")] = None,
    plan: Annotated[str | None, typer.Option("--plan", metavar="ID",
                                             help="Optional for a family member.")] = None,
    start: Annotated[str | None, typer.Option("--start", metavar="ISO",
                                              help="When the line starts. Default: now.")] = None,
    line_id: Annotated[str | None, typer.Option("--id", metavar="ID",
                                                help="Line id. Default: generated.")] = None,
    member: Annotated[bool | None, typer.Option(
        "--member/--no-member", help="Draw from the account's family pool. Default: yes in "
        "a family account.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a line on a plan in an account."""
    created = run(provisioning.create_line, uow(), account, msisdn, instant(start, "--start"),
                  plan, imsi, line_id, member)
    if as_json:
        print_json({"id": created, "account": account, "msisdn": msisdn, "plan": plan})
    else:
        console.print(f"line {created} ({msisdn}) created in {account}")


@usage_app.command("add")
def usage_add(
    line: LineArg,
    value: Annotated[str, typer.Argument(metavar="AMOUNT", help="500MB, 90s, 3 ...")],
    at: Annotated[str, typer.Option("--at", metavar="ISO", help="When the usage happened.")],
    received_at: Annotated[str | None, typer.Option(
        "--received-at", metavar="ISO",
        help="When the network reported it (decides lateness). Default: now.")] = None,
    event_id: Annotated[str | None, typer.Option(
        "--event-id", metavar="ID", help="Counted once per id. Default: generated.")] = None,
    rating_group: Annotated[str | None, typer.Option("--rating-group", metavar="G")] = None,
    unit: Annotated[UnitChoice, typer.Option("--unit")] = UnitChoice.DATA,
    as_json: JsonOption = False,
) -> None:
    """Record one usage event."""
    size = amount(value, Unit(unit.value))
    recorded = run(ledger_ops.record_usage, uow(), line, size, instant(at),
                   instant(received_at, "--received-at"), event_id or _ref("ev"),
                   Unit(unit.value), rating_group)
    outcome = recorded.outcome
    summary = {"line": recorded.line, "amount": size, "unit": unit.value, "late": outcome.late,
               "corrected": outcome.replayed,
               "debits": [{"bucket": e.bucket_id, "amount": e.amount} for e in outcome.entries
                          if e.kind == "debit"],
               "overage": sum(e.amount for e in outcome.entries if e.kind == "overage")}
    if as_json:
        print_json(summary)
        return
    late = " (late: rated at arrival)" if outcome.late else ""
    console.print(f"recorded {format_amount(size, Unit(unit.value))} on {recorded.line}{late}")


@app.command()
def topup(
    line: LineArg,
    value: Annotated[str, typer.Argument(metavar="AMOUNT")],
    valid_days: Annotated[int, typer.Option("--valid-days", metavar="N", min=1)],
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a top-up pass valid N days (stacked or merged per the plan)."""
    size = positive(amount(value), "a top-up")
    recorded = run(ledger_ops.top_up, uow(), line, size, instant(at), valid_days, _ref("topup"))
    if as_json:
        print_json({"line": recorded.line, "amount": size, "valid_days": valid_days})
    else:
        console.print(f"top-up {format_amount(size)} for {valid_days} days on {recorded.line}")


@family_app.command("limit")
def family_limit(
    line: LineArg,
    value: Annotated[str, typer.Argument(metavar="AMOUNT", help="Per cycle, or 'none'.")],
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cap what a member may take from the family pool per cycle."""
    size = None if value.lower() == "none" else amount(value, bound=MAX_BUCKET)
    recorded = run(ledger_ops.set_limit, uow(), line, size, instant(at), _ref("limit"))
    if as_json:
        print_json({"line": recorded.line, "limit": size})
    else:
        console.print(f"limit of {recorded.line}: {format_amount(size)}")


@family_app.command("gift")
def family_gift(
    from_line: Annotated[str, typer.Argument(metavar="FROM_LINE")],
    to_line: Annotated[str, typer.Argument(metavar="TO_LINE")],
    value: Annotated[str, typer.Argument(metavar="AMOUNT")],
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Gift rollover or top-up bytes to another line of the same account."""
    size = positive(amount(value), "a gift")
    recorded = run(ledger_ops.gift, uow(), from_line, to_line, size, instant(at), _ref("gift"))
    if as_json:
        print_json({"from": from_line, "to": recorded.line, "amount": size})
    else:
        console.print(f"gifted {format_amount(size)} from {from_line} to {recorded.line}")


def line_timezone(line: str) -> str:
    """The timezone of the line's account: what its instants are shown in."""
    unit = uow()
    account = run(directory.line, unit, line)["account"]
    return run(directory.account, unit, account)["timezone"]


@app.command()
def balance(line: LineArg, at: AtOption = None, as_json: JsonOption = False) -> None:
    """What the line can use at an instant, bucket by bucket (the simulate check object)."""
    view = run(ledger_ops.balance, uow(), line, instant(at))
    if as_json:
        print_json(view)
        return
    tz = line_timezone(line)
    table = Table(title=f"{view['line']} at {local_time(view['at'], tz)} ({tz})")
    for col in ("kind", "unit", "owner", "remaining", "valid until"):
        table.add_column(col)
    for b in view["buckets"]:
        table.add_row(b["kind"], b["unit"], b["owner"],
                      format_amount(b["remaining"], Unit(b["unit"])),
                      local_time(b["valid_until"], tz))
    console.print(table)
    available = ", ".join(f"{u}: {format_amount(v, Unit(u))}" for u, v in view["available"].items())
    qos = view["qos"]
    speed = f" at {qos['max_downlink_kbps']} kbps" if qos["max_downlink_kbps"] is not None else ""
    console.print(f"available {available}; QoS {qos['state']}{speed}")


@app.command()
def statement(
    line: LineArg,
    at: AtOption = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="ISO",
        help="Only entries recorded by this instant: the statement as it was told then "
             "(ISO 8601; without an offset: the account's timezone). Default: everything "
             "recorded so far.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Explain every byte of the cycle containing --at; totals reconcile to zero.

    The cycle holds the entries effective in it, corrections booked later included
    (docs/semantics.md, the bitemporal ledger)."""
    recorded_by = None if as_of is None else instant(as_of, "--as-of")
    stmt = run(ledger_ops.statement, uow(), line, instant(at), recorded_by)
    data = stmt.as_dict()
    if as_json:
        print_json(data)
        return
    for table in statement_tables(stmt, line_timezone(line)):
        console.print(table)
    if any(s.balance_check or s.usage_check for s in stmt.units.values()):  # pragma: no cover
        fail("statement does not reconcile: this is a bug, please report it")


@app.command()
def qos(
    line: LineArg,
    at: AtOption = None,
    rating_group: Annotated[str | None, typer.Option("--rating-group", metavar="G")] = None,
    as_json: JsonOption = False,
) -> None:
    """The QoS decision for the packet core: normal, deprioritized, throttled or blocked."""
    decision = run(ledger_ops.qos_at, uow(), line, instant(at), rating_group)
    if as_json:
        print_json(decision.as_dict())
        return
    speed = (f" (max {decision.max_downlink_kbps} kbps)"
             if decision.max_downlink_kbps is not None else "")
    console.print(f"{decision.state}{speed}")


__all__ = ["fail"]


@app.command()
def demo(
    database: Annotated[str, typer.Option(
        "--database", metavar="URL", help="Where to build the demo (recreated each run).")]
        = "sqlite:///./carryover-demo.db",
    as_json: JsonOption = False,
) -> None:
    """Build a fresh demo database: 50 subscribers, three months of usage, and a report."""
    from carryover.cli.demo_view import show_demo

    show_demo(database, as_json)
