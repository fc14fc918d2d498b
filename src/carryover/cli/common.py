"""What every command shares: the app object, instants, amounts, errors and output.

Bad input exits 2 with one plain line per problem on stderr (Rich would wrap
long paths and scripts grep these lines); results go to stdout, as Rich tables
for people or JSON with --json.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from carryover.domain.bounds import MAX_EVENT, BoundError, check_amount
from carryover.domain.units import AmountError, Unit, parse_amount
from carryover.runtime import Carryover
from carryover.services.errors import ServiceError
from carryover.store.engine import UnsupportedDatabase
from carryover.store.schema import SchemaError
from carryover.store.uow import UnitOfWork

console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AtOption = Annotated[str | None, typer.Option(
    "--at", metavar="ISO",
    help="The instant (ISO 8601; without an offset: the account's timezone). Default: now.")]


def fail(lines: list[str] | str) -> NoReturn:
    from carryover.cli.failures import scrub  # no password in any line (a URL's, the DB's)

    for line in [lines] if isinstance(lines, str) else lines:
        print(scrub(line), file=sys.stderr)
    raise typer.Exit(2)


def now() -> datetime:
    """The CLI is the edge where the clock is read; services and the domain take `at`."""
    return datetime.now(UTC)


def instant(text: str | None, what: str = "--at") -> datetime:
    if text is None:
        return now()
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{what}: {text!r} is not an ISO 8601 instant such as 2026-02-05T00:00 "
             "or 2026-02-05T00:00+01:00")


def amount(text: str, unit: Unit = Unit.DATA, what: str = "AMOUNT",
           bound: int = MAX_EVENT) -> int:
    """The amount `text` names, at most `bound` (domain/bounds.py); else exit 2."""
    try:
        return check_amount(what, parse_amount(text, unit)[0], bound)
    except BoundError as exc:
        fail(str(exc))
    except AmountError as exc:
        fail(f"{what}: {exc}")


def app_object() -> Carryover:
    try:
        return Carryover()
    except ValidationError as exc:
        fail([f"configuration: {'.'.join(map(str, e['loc']))}: {e['msg']}"
              for e in exc.errors()])


def engine():
    """The database, migrated and seeded; a database carryover cannot use is refused."""
    try:
        return app_object().open()
    except (SchemaError, UnsupportedDatabase) as exc:
        fail(str(exc))


def uow():
    """A unit of work on the database (`engine()`), for a service to run in."""
    return UnitOfWork(engine())  # engine() refuses a database carryover cannot use


def run(action, *args: Any, **kwargs: Any) -> Any:
    """Call a service; its refusals become one line and exit status 2."""
    try:
        return action(*args, **kwargs)
    except ServiceError as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
