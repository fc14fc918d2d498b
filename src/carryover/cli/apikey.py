"""`carryover apikey`: create, list and revoke the keys of the HTTP API (docs/api.md).

The token is printed once, at creation; only its hash is stored, so a lost
token cannot be shown again: revoke the key and create another.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from carryover.cli import app
from carryover.cli.common import JsonOption, console, now, print_json, run, uow
from carryover.human_time import local_time
from carryover.services.access import api_keys

apikey_app = typer.Typer(help="API keys for `carryover serve`: operator or subscriber.",
                         no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


class Role(StrEnum):
    OPERATOR = "operator"
    SUBSCRIBER = "subscriber"


@apikey_app.command("create")
def apikey_create(
    role: Annotated[Role, typer.Option("--role", help="operator: everything; subscriber: "
                                       "one account's lines only.")],
    account: Annotated[str | None, typer.Option(
        "--account", metavar="NAME", help="The account a subscriber key is bound to.")] = None,
    label: Annotated[str | None, typer.Option("--label", metavar="TEXT",
                                              help="A note to recognise the key by.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; its token is shown this once and stored only as a hash."""
    info, token = run(api_keys.create_key, uow(), role.value, now(), account, label)
    if as_json:
        print_json({**info, "token": token})
        return
    scope = f" for account {info['account']}" if info["account"] else ""
    console.print(f"{info['role']} key {info['id']}{scope} created. Token (shown once):",
                  highlight=False)
    print(token)


@apikey_app.command("list")
def apikey_list(as_json: JsonOption = False) -> None:
    """List keys (never their tokens)."""
    keys = api_keys.list_keys(uow())
    if as_json:
        print_json(keys)
        return
    table = Table(title="API keys")
    # An id is what `apikey revoke` takes: never cut or wrapped, whatever the width.
    table.add_column("id", no_wrap=True, min_width=max((len(k["id"]) for k in keys), default=2))
    for col in ("role", "account", "label", "created", "revoked"):
        table.add_column(col, overflow="fold")
    for k in keys:
        table.add_row(k["id"], k["role"], k["account"] or "-", k["label"] or "-",
                      local_time(k["created_at"], None), local_time(k["revoked_at"], None))
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (key_...).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: requests with its token are refused from now on."""
    info = run(api_keys.revoke_key, uow(), key_id, now())
    if as_json:
        print_json(info)
    else:
        console.print(f"key {info['id']} revoked at {local_time(info['revoked_at'], None)}",
                      highlight=False)
