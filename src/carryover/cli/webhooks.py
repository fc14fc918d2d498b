"""`carryover webhooks`: endpoints, the delivery worker, dead letters and replay.

Notifications are written to the outbox by every change (docs/api.md,
"Webhooks"); these commands deliver them. The secret of an endpoint is printed
once, when it is added: it signs every delivery, so keep it where the receiver
can verify signatures with it.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from carryover.cli import app
from carryover.cli.common import JsonOption, app_object, console, now, print_json, run, uow
from carryover.services.notify import delivery as webhook_delivery
from carryover.services.notify import webhooks

HELD = ("another delivery loop (carryover serve or webhooks deliver) holds the "
        "deployment's delivery lock")

webhooks_app = typer.Typer(help="Webhook endpoints and delivery of notifications.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to POST notifications.")],
    kinds: Annotated[str | None, typer.Option(
        "--kinds", metavar="K1,K2", help="Only these kinds (default: every kind).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an endpoint; its signing secret is shown this once."""
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    info, secret = run(webhooks.add_endpoint, uow(), url, wanted, now(),
                       allow_private=app_object().settings.webhook_allow_private_targets)
    if as_json:
        print_json({**info, "secret": secret})
        return
    console.print(f"endpoint {info['id']} for {info['url']} added. Secret (shown once):",
                  highlight=False)
    print(secret)


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOption = False) -> None:
    """List endpoints and their deliveries by status (never their secrets)."""
    rows = webhooks.list_endpoints(uow())
    if as_json:
        print_json(rows)
        return
    table = Table(title="Webhook endpoints")
    for col in ("id", "url", "kinds", "pending", "delivered", "dead"):
        table.add_column(col)
    for r in rows:
        kinds = ",".join(r["kinds"]) if r["kinds"] else "all"
        table.add_row(r["id"] + (" (removed)" if r["disabled_at"] else ""), r["url"], kinds,
                      str(r["pending"]), str(r["delivered"]), str(r["dead"]))
    console.print(table)


@webhooks_app.command("deliver")
def webhooks_deliver(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Deliver due notifications: one pass with --once, else until interrupted.

    One delivery loop runs per deployment: while another (carryover serve, or
    another webhooks deliver) holds the delivery lock, --once delivers nothing and
    says so; without --once it waits for the lock."""
    carry = app_object()

    def waiting() -> None:
        print(f"carryover: {HELD}; waiting for it to be released", file=sys.stderr,
              flush=True)

    try:
        done = webhook_delivery.run_locked(uow(), carry.settings, 1 if once else None,
                                           waiting)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        raise typer.Exit(130) from None
    if done is None:
        print(f"carryover: {HELD}; it delivers, nothing delivered here", file=sys.stderr)
        done = {"delivered": 0, "retrying": 0, "dead": 0}
    if as_json:
        print_json(done)
    else:
        console.print(f"delivered {done['delivered']}, to retry {done['retrying']}, "
                      f"dead {done['dead']}", highlight=False)


@webhooks_app.command("dead")
def webhooks_dead(as_json: JsonOption = False) -> None:
    """List dead letters: deliveries that used up their attempts."""
    rows = webhooks.dead_letters(uow())
    if as_json:
        print_json(rows)
        return
    table = Table(title="Dead letters")
    for col in ("id", "endpoint", "event", "kind", "line", "attempts", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["endpoint"], str(r["event"]), r["kind"], r["line"],
                      str(r["attempts"]), r["last_error"] or "-")
    console.print(table)


@webhooks_app.command("replay")
def webhooks_replay(
    delivery_id: Annotated[int, typer.Argument(metavar="ID", help="The delivery's id "
                                               "(from `webhooks dead`).")],
    as_json: JsonOption = False,
) -> None:
    """Queue a dead (or delivered) delivery again, with a fresh set of attempts."""
    info = run(webhooks.replay, uow(), delivery_id, now())
    if as_json:
        print_json(info)
    else:
        console.print(f"delivery {info['id']} queued again", highlight=False)


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: Annotated[str, typer.Argument(metavar="ID", help="The endpoint's id "
                                               "(from `webhooks list`).")],
    as_json: JsonOption = False,
) -> None:
    """Remove (disable) an endpoint: no new deliveries, its pending ones are not sent."""
    info = run(webhooks.remove_endpoint, uow(), endpoint_id, now())
    if as_json:
        print_json(info)
    else:
        console.print(f"endpoint {info['id']} removed", highlight=False)
