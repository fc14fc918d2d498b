"""The `carryover` command line: thin commands over services, Rich for people, --json for scripts.

Bad input exits with status 2 and one line per problem on stderr (file, event,
field, why); never a traceback. What escapes a command meets the one error
boundary (cli.failures): an expected failure (database, disk, file) is one line
`carryover: <what>: <why>` and exit 2, a defect one line and exit 1
(CARRYOVER_DEBUG=1 shows its traceback). Every command that prints results takes --json.
The reference in docs/cli.md is generated from this app's --help (see
carryover.docs_cli) and a test fails when the two drift apart.
"""

from __future__ import annotations

import sys

import typer

from carryover.cli.failures import Guarded

app = typer.Typer(
    name="carryover",
    cls=Guarded,
    help="Exact balances for eSIM mobile plans: allowances, rollover, top-ups, unlimited "
         "caps and family pools. The database is CARRYOVER_DATABASE_URL "
         "(default: sqlite:///./carryover.db).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plan_app = typer.Typer(help="List, show, load and change plans.", no_args_is_help=True)
account_app = typer.Typer(help="Create accounts (bill-cycle day, timezone, family pool).",
                          no_args_is_help=True)
line_app = typer.Typer(help="Create lines (an MSISDN on a plan).", no_args_is_help=True)
usage_app = typer.Typer(help="Record usage events.", no_args_is_help=True)
family_app = typer.Typer(help="Family pools: member limits and gifts.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(account_app, name="account")
app.add_typer(line_app, name="line")
app.add_typer(usage_app, name="usage")
app.add_typer(family_app, name="family")

# Command modules register themselves on the apps above.
from carryover.cli import (  # noqa: E402,F401
    advice,
    apikey,
    esim,
    files,
    operator,
    plans,
    portal,
    serve,
    simulate,
    smdp,
    webhooks,
)


def main() -> None:
    from carryover.cli.failures import run

    try:
        run(app)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
