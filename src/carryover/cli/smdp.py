"""The SM-DP+ emulator and a simulated phone: for development and tests only.

`carryover smdp serve` runs an in-memory SM-DP+ that speaks ES2+ and notifies
the operator like a real one; `carryover smdp device ...` plays the phone. Never
point a production operator at the emulator: it holds no keys, builds no
profile packages and forgets everything when it stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carryover.adapters.inventory_csv import read_inventory_file
from carryover.adapters.smdp_device import DeviceRefused, SimulatedDevice
from carryover.cli import app
from carryover.cli.common import JsonOption, app_object, console, fail, print_json
from carryover.domain.esim.identifiers import IdentifierError, parse_eid, parse_iccid


def say(text: object) -> None:
    """Print for people: no syntax colouring, and codes or EIDs never broken across lines."""
    console.print(text, highlight=False, soft_wrap=True)


smdp_app = typer.Typer(help="SM-DP+ emulator for development and tests (never production).",
                       no_args_is_help=True)
device_app = typer.Typer(help="Play the phone against the emulator: download, enable, "
                              "disable, delete.", no_args_is_help=True)
smdp_app.add_typer(device_app, name="device")
app.add_typer(smdp_app, name="smdp")

EidOption = Annotated[str, typer.Option("--eid", metavar="EID", help="The device's EID.")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", metavar="URL", help="The emulator. Default: CARRYOVER_ES2PLUS_URL.")]
IccidArg = Annotated[str, typer.Argument(metavar="ICCID")]


@smdp_app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8700,
    address: Annotated[str, typer.Option(
        "--address", metavar="FQDN", help="SM-DP+ address written into activation codes.")]
        = "smdp.localhost",
    operator_url: Annotated[str, typer.Option(
        "--operator-url", metavar="URL", help="Where handleDownloadProgressInfo is sent "
        "(carryover serve).")] = "http://127.0.0.1:8000",
    profiles: Annotated[Path | None, typer.Option(
        "--profiles", metavar="FILE.csv", help="Profiles to hold (the inventory CSV format).")]
        = None,
    cert: Annotated[Path | None, typer.Option("--cert", metavar="PEM",
                                              help="Serve HTTPS with this certificate.")] = None,
    key: Annotated[Path | None, typer.Option("--key", metavar="PEM")] = None,
    client_ca: Annotated[Path | None, typer.Option(
        "--client-ca", metavar="PEM", help="Require client certificates from this CA "
        "(mutual TLS, as production SM-DP+s do).")] = None,
) -> None:
    """Run the SM-DP+ emulator (ES2+ over HTTP, or HTTPS with --cert).

    It notifies the operator with the token CARRYOVER_SMDP_EMULATOR_TOKEN, which the
    operator must list in CARRYOVER_ES2PLUS_NOTIFICATION_TOKENS.
    """
    from carryover.adapters.smdp_emulator import HttpNotifier
    from carryover.adapters.smdp_emulator import serve as run_emulator
    from carryover.adapters.smdp_store import SmdpStore

    token = app_object().settings.smdp_emulator_token
    store = SmdpStore(address, notify=HttpNotifier(
        operator_url, token.get_secret_value() if token is not None else None))
    if profiles is not None:
        records, errors = read_inventory_file(profiles)
        if errors:
            fail(errors)
        for r in records:
            store.add_profile(r.iccid, r.imsi, r.profile_type)
    if key is not None and cert is None:
        fail("--key needs --cert")
    say(f"SM-DP+ emulator (development and tests only) at {address}, "
        f"{len(store.profiles)} profiles; notifying {operator_url}")
    if token is None:
        say("warning: CARRYOVER_SMDP_EMULATOR_TOKEN is not set: the operator will refuse "
            "its notifications (401)")
    run_emulator(store, host, port, certfile=str(cert) if cert else None,
                 keyfile=str(key) if key else None,
                 client_ca=str(client_ca) if client_ca else None)


def _device(url: str | None, eid: str) -> SimulatedDevice:
    try:
        eid = parse_eid(eid)
    except IdentifierError as exc:
        fail(str(exc))
    return SimulatedDevice(url or app_object().settings.es2plus_url, eid)


def _report(result: dict, as_json: bool, what: str) -> None:
    if as_json:
        print_json(result)
    else:
        say(f"{what}: profile {result['iccid']} is {result['state']} on EID "
                      f"{result['eid']}")


@device_app.command()
def download(
    activation_code: Annotated[str, typer.Argument(metavar="ACTIVATION_CODE")],
    eid: EidOption,
    confirmation_code: Annotated[str | None, typer.Option(
        "--confirmation-code", metavar="CODE")] = None,
    fail_at: Annotated[str | None, typer.Option(
        "--fail", metavar="STEP", help="Simulate a failure at 'download' or 'install'.")]
        = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download and install a profile (notification points 3 and 4)."""
    if fail_at not in (None, "download", "install"):
        fail(f"--fail: {fail_at!r} is not 'download' or 'install'")
    with _device(url, eid) as device:
        try:
            result = device.download(activation_code, confirmation_code, fail_at)
        except DeviceRefused as exc:
            fail(f"download refused: {exc}")
    _report(result, as_json, "downloaded")


def _act(action: str, iccid: str, eid: str, url: str | None, as_json: bool) -> None:
    try:
        iccid = parse_iccid(iccid)
    except IdentifierError as exc:
        fail(str(exc))
    with _device(url, eid) as device:
        try:
            result = device.act(action, iccid)
        except DeviceRefused as exc:
            fail(f"{action} refused: {exc}")
    _report(result, as_json, f"{action}d")


@device_app.command()
def enable(iccid: IccidArg, eid: EidOption, url: UrlOption = None,
           as_json: JsonOption = False) -> None:
    """Enable an installed profile."""
    _act("enable", iccid, eid, url, as_json)


@device_app.command()
def disable(iccid: IccidArg, eid: EidOption, url: UrlOption = None,
            as_json: JsonOption = False) -> None:
    """Disable an installed profile."""
    _act("disable", iccid, eid, url, as_json)


@device_app.command()
def delete(iccid: IccidArg, eid: EidOption, url: UrlOption = None,
           as_json: JsonOption = False) -> None:
    """Delete an installed profile (notification point 5: the ICCID can be reused)."""
    _act("delete", iccid, eid, url, as_json)
