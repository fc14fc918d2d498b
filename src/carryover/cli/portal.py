"""`carryover portal link`: a one-time sign-in link to the subscriber portal (docs/portal.md).

The link starts with `portal_base_url`; it signs in once and ends unused after
`--ttl` (default `portal_link_minutes`). Only a hash of its token is stored, so
a link that was not delivered cannot be shown again: make another.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from carryover.cli import app
from carryover.cli.common import JsonOption, app_object, console, fail, now, print_json, run, uow
from carryover.human_time import local_time
from carryover.services.access import portal_sessions as portal_access

portal_app = typer.Typer(help="The subscriber portal: sign-in links.", no_args_is_help=True)
app.add_typer(portal_app, name="portal")
TTL = re.compile(r"(\d{1,6})\s*([mhd]?)")
UNITS = {"": 60, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = timedelta(days=7)


def ttl_of(text: str) -> timedelta:
    """`15m`, `2h`, `1d` or a number of minutes; from one minute to seven days."""
    found = TTL.fullmatch(text.strip().lower())
    if found is None:
        fail(f"--ttl: {text!r} is not a duration such as 15m, 2h or 1d")
    ttl = timedelta(seconds=int(found[1]) * UNITS[found[2]])
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        fail(f"--ttl: {text!r} is not between 1 minute and 7 days")
    return ttl


@portal_app.command("link")
def portal_link(
    line: Annotated[str, typer.Argument(metavar="LINE", help="Line id, MSISDN or IMSI.")],
    ttl: Annotated[str | None, typer.Option(
        "--ttl", metavar="DURATION",
        help="How long the link stays usable: 15m, 2h, 1d (default: portal_link_minutes).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a one-time sign-in link for LINE's subscriber."""
    settings = app_object().settings
    lifetime = ttl_of(ttl) if ttl is not None else timedelta(
        minutes=settings.portal_link_minutes)
    token, line_id, expires, zone = run(portal_access.create_link, uow(), line, now(), lifetime)
    url = f"{settings.portal_base_url.rstrip('/')}/portal/link/{token}"
    if as_json:
        print_json({"line": line_id, "url": url, "expires_at": expires.isoformat()})
        return
    console.print(f"sign-in link for line {line_id}, usable once until "
                  f"{local_time(expires, zone)} ({zone}):", highlight=False)
    print(url)
