"""eSIM commands: validate identifiers, keep the profile inventory, order, cancel and move.

`esim validate` exits 0 when the value is valid and 1 when it is not (the answer
is "no", not a usage error); every other refusal exits 2 with one line per
problem, like the rest of the CLI. A confirmation code is printed once, by the
command that made it, and never again: only its hash is stored.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import segno
import typer
from rich.table import Table

from carryover.adapters.es2plus_client import Es2PlusClient
from carryover.adapters.inventory_csv import read_inventory_file
from carryover.cli import app
from carryover.cli.common import JsonOption, app_object, console, fail, now, print_json, run, uow
from carryover.domain.esim.classify import classify
from carryover.services.esim import inventory as esim_inventory
from carryover.services.esim import orders as esim


def say(text: object) -> None:
    """Print for people: no syntax colouring, and codes or EIDs never broken across lines."""
    console.print(text, highlight=False, soft_wrap=True)


esim_app = typer.Typer(help="eSIM profiles: validate, inventory, order, status, cancel, move "
                            "(GSMA SGP.22 over ES2+; see docs/esim.md).", no_args_is_help=True)
inventory_app = typer.Typer(help="The operator's stock of eSIM profiles.", no_args_is_help=True)
esim_app.add_typer(inventory_app, name="inventory")
app.add_typer(esim_app, name="esim")

LineArg = Annotated[str, typer.Argument(metavar="LINE", help="Line id, MSISDN or IMSI.")]
CodeOption = Annotated[bool, typer.Option(
    "--confirmation-code", help="Protect the download with a confirmation code (printed "
    "once, stored only as a hash).")]
PngOption = Annotated[Path | None, typer.Option("--png", metavar="FILE",
                                                help="Write the QR code as PNG.")]
SvgOption = Annotated[Path | None, typer.Option("--svg", metavar="FILE",
                                                help="Write the QR code as SVG.")]


@contextmanager
def _smdp():
    """The ES2+ client configured by the settings (CARRYOVER_ES2PLUS_*)."""
    try:
        client = Es2PlusClient.from_settings(app_object().settings)
    except (OSError, ValueError) as exc:  # unreadable certificate, key or CA file
        fail(f"ES2+ TLS settings: {exc}")
    with client:
        yield client


def _warn_low_stock() -> None:
    sys.stdout.flush()  # results first, then the warnings, when both go to one terminal
    threshold = app_object().settings.esim_low_stock_threshold
    for low in esim_inventory.stock(uow(), threshold).low:
        print(f"warning: {low.message()}", file=sys.stderr)


@esim_app.command()
def validate(
    value: Annotated[str, typer.Argument(metavar="VALUE",
                                         help="An EID, ICCID, IMSI or activation code.")],
    as_json: JsonOption = False,
) -> None:
    """Say whether VALUE is a valid EID, ICCID, IMSI or activation code, and why not.

    Exit status 0 when valid, 1 when not.
    """
    result = classify(value)
    if as_json:
        print_json(result.as_dict())
    elif result.valid:
        say(f"valid {result.kind.replace('_', ' ')}")
    else:
        kind = "" if result.kind == "unknown" else f"{result.kind.replace('_', ' ')}: "
        say(f"invalid {kind}{result.reason}")
    raise typer.Exit(0 if result.valid else 1)


@inventory_app.command("import")
def inventory_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv",
                                         help="CSV with columns iccid, imsi, profile_type.")],
    as_json: JsonOption = False,
) -> None:
    """Import a vendor's batch of profiles; any bad row keeps the whole batch out."""
    records, errors = read_inventory_file(file)
    if errors:
        fail(errors)
    try:
        count = esim_inventory.import_profiles(uow(), records, now(), str(file))
    except esim_inventory.InventoryRejected as exc:
        fail(exc.problems)
    if as_json:
        print_json({"imported": count, "file": str(file)})
    else:
        say(f"imported {count} profile{'s' if count != 1 else ''} from {file}")
    _warn_low_stock()


@inventory_app.command("list")
def inventory_list(
    state: Annotated[str | None, typer.Option("--state", metavar="S",
                                              help="Only profiles in this state.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List profiles and the stock per profile type; warn when a type runs low."""
    profiles = run(esim_inventory.list_profiles, uow(), state)
    stock = esim_inventory.stock(uow(), app_object().settings.esim_low_stock_threshold)
    if as_json:
        print_json({"profiles": profiles, "stock": stock.counts,
                    "low_stock": [low.profile_type for low in stock.low]})
    else:
        table = Table(title="eSIM profiles")
        for column in ("ICCID", "IMSI"):
            table.add_column(column, no_wrap=True)
        for column in ("type", "state"):
            table.add_column(column)
        table.add_column("EID", overflow="fold")
        table.add_column("line")
        for p in profiles:
            table.add_row(p["iccid"], p["imsi"], p["profile_type"], p["state"],
                          p["eid"] or "-", p["line"] or "-")
        say(table)
        for kind, counts in sorted(stock.counts.items()):
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            say(f"{kind}: {summary}")
    sys.stdout.flush()
    for low in stock.low:
        print(f"warning: {low.message()}", file=sys.stderr)


def _show(result: esim.OrderResult, png: Path | None, svg: Path | None,
          as_json: bool) -> None:
    qr = segno.make_qr(result.activation_code.qr_text(), error="m")
    for path, kind in ((png, "png"), (svg, "svg")):
        if path is not None:
            try:
                qr.save(str(path), kind=kind, scale=8, border=4)
            except OSError as exc:
                fail(f"{path}: {exc.strerror or exc}")
    if as_json:
        print_json(result.as_dict())
        return
    say(f"line {result.line}: profile {result.iccid} released for download"
                  + (f" to EID {result.eid}" if result.eid else ""))
    say(f"activation code: {result.activation_code.format()}")
    qr.terminal(out=sys.stdout, compact=True)
    if result.confirmation_code is not None:
        say(f"confirmation code: {result.confirmation_code} (shown once: give it "
                      "to the subscriber now; only its hash is kept)")
    for path in (png, svg):
        if path is not None:
            say(f"QR code written to {path}")


@esim_app.command()
def order(
    line: LineArg,
    eid: Annotated[str | None, typer.Option("--eid", metavar="EID",
                                            help="Bind the order to this device.")] = None,
    profile_type: Annotated[str | None, typer.Option(
        "--profile-type", metavar="T", help="Needed when several types are in stock.")] = None,
    confirmation_code: CodeOption = False,
    png: PngOption = None,
    svg: SvgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Order a profile for LINE (downloadOrder, confirmOrder) and print its activation code."""
    if png is not None and svg is not None:
        fail("give --png or --svg, not both")
    settings = app_object().settings
    with _smdp() as smdp:
        result = run(esim.order, uow(), smdp, line, now(), eid=eid,
                     profile_type=profile_type, with_confirmation_code=confirmation_code,
                     smdp_address=settings.activation_address())
    _show(result, png, svg, as_json)
    _warn_low_stock()


@esim_app.command()
def status(
    ident: Annotated[str, typer.Argument(metavar="LINE|ICCID")],
    as_json: JsonOption = False,
) -> None:
    """A line's profile (or a profile by ICCID): state, device, activation code, history."""
    view = run(esim.status, uow(), ident)
    if as_json:
        print_json(view)
        return
    if view["state"] is None:
        say(f"ICCID {view['iccid']} is not in the inventory; notifications about it were "
            "refused and kept:")
    else:
        say(f"profile {view['iccid']} ({view['profile_type']}, IMSI {view['imsi']}): "
            f"{view['state']}" + (f" on EID {view['eid']}" if view["eid"] else "")
            + (f", line {view['line']}" if view["line"] else ""))
    if view["activation_code"]:
        needs = " (needs the confirmation code)" if view["confirmation_code_required"] else ""
        say(f"activation code: {view['activation_code']}{needs}")
    table = Table(title="history")
    table.add_column("at (UTC)", no_wrap=True)
    for column in ("source", "event", "state"):
        table.add_column(column)
    for e in view["history"]:
        moved = f"{e['from'] or '-'} -> {e['to'] or '-'}" if e["from"] != e["to"] else ""
        outcome = (e["detail"] or {}).get("outcome")
        event = e["kind"] + (f" ({outcome})" if outcome in ("refused", "not applied") else "")
        table.add_row(e["at"][:19].replace("T", " "), e["source"], event, moved)
    say(table)


@esim_app.command()
def cancel(line: LineArg, as_json: JsonOption = False) -> None:
    """Cancel LINE's order (cancelOrder); refused once the profile is on a device."""
    with _smdp() as smdp:
        result = run(esim.cancel, uow(), smdp, line, now())
    if as_json:
        print_json(result)
    else:
        say(f"order of line {result['line']} cancelled: profile {result['iccid']} "
                      f"is {result['state']}")


@esim_app.command()
def move(
    line: LineArg,
    eid: Annotated[str, typer.Option("--eid", metavar="NEW_EID", help="The new device.")],
    confirmation_code: CodeOption = False,
    png: PngOption = None,
    svg: SvgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move LINE to a new device; its balance, rollover and usage stay with the line."""
    if png is not None and svg is not None:
        fail("give --png or --svg, not both")
    settings = app_object().settings
    with _smdp() as smdp:
        result = run(esim.move, uow(), smdp, line, eid, now(),
                     new_iccid=settings.esim_new_iccid_on_move,
                     with_confirmation_code=confirmation_code,
                     smdp_address=settings.activation_address())
    _show(result, png, svg, as_json)
