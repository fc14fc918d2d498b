"""`carryover demo`: build the demo database with a progress bar and print its report."""

from __future__ import annotations

import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from carryover.cli.common import console, fail, print_json
from carryover.cli.render import statement_tables
from carryover.domain.units import format_amount
from carryover.human_time import local_time
from carryover.runtime import Carryover
from carryover.services.access import portal_sessions as portal_access
from carryover.services.scenarios.demo import DAYS, TZ, run_demo
from carryover.settings import get_settings
from carryover.store.engine import dispose_engines
from carryover.store.schema import SchemaError
from carryover.store.uow import UnitOfWork


def _fresh(database: str) -> None:
    url = make_url(database)
    if url.get_backend_name() != "sqlite" or not url.database:
        fail("the demo builds a fresh SQLite file; give --database sqlite:///path.db")
    for suffix in ("", "-wal", "-shm"):
        Path(url.database + suffix).unlink(missing_ok=True)


def show_demo(database: str, as_json: bool) -> None:
    _fresh(database)
    dispose_engines()
    try:
        engine = Carryover(get_settings(database_url=database)).open()
    except SchemaError as exc:
        fail(str(exc))
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[events]} events"), TimeElapsedColumn(),
                  console=console, disable=as_json, transient=True) as progress:
        task = progress.add_task("three months of usage, week by week", total=DAYS // 7 + 2,
                                 events=0)

        def step(count: int) -> None:
            progress.update(task, advance=1, events=progress.tasks[0].fields["events"] + count)
        report = run_demo(UnitOfWork(engine), step)
    seconds = time.perf_counter() - started
    stmt = report.statement
    settings = get_settings(database_url=database)
    token, *_ = portal_access.create_link(UnitOfWork(engine), report.statement_line,
                                          datetime.now(UTC),
                                          timedelta(minutes=settings.portal_link_minutes))
    portal_link = f"{settings.portal_base_url.rstrip('/')}/portal/link/{token}"
    if as_json:
        print_json({"database": database, "lines": report.lines, "events": report.events,
                    "late_events": report.late_events, "seconds": round(seconds, 2),
                    "rolled_over_by_plan": report.rolled_over_by_plan,
                    "throttled_at": report.end.isoformat(), "throttled": report.throttled,
                    "statement": stmt.as_dict(), "portal_link": portal_link})
        return
    console.print(f"[bold]Demo database[/bold] {database}: {report.lines} lines, "
                  f"{report.events:,} usage events ({report.late_events} arrived late), "
                  f"built in {seconds:.1f} s")
    table = Table(title="Rolled-over data per preset (all deposits, corrections included)")
    table.add_column("plan")
    table.add_column("rolled over", justify="right")
    for plan, total in report.rolled_over_by_plan.items():
        table.add_row(plan, format_amount(total))
    console.print(table)
    table = Table(title=f"Lines not at full speed at {local_time(report.end, TZ)}")
    for col in ("line", "state", "max downlink kbps"):
        table.add_column(col)
    for row in report.throttled:
        kbps = row["max_downlink_kbps"]
        table.add_row(row["line"], row["state"], "-" if kbps is None else str(kbps))
    console.print(table)
    console.print(f"Statement of {report.statement_line}:")
    for table in statement_tables(stmt, TZ):
        console.print(table)
    command = runnable_command()
    console.print(f"Explore it: CARRYOVER_DATABASE_URL={database} {command} balance "
                  f"{report.statement_line} --at 2026-02-01T00:00", highlight=False)
    if command != "carryover":
        console.print(f"(or `. {Path(command).parent}/activate` first, then type `carryover`)",
                      highlight=False)
    console.print(f"The subscriber portal: start the server with CARRYOVER_DATABASE_URL="
                  f"{database} {command} serve, then open this one-time link to "
                  f"{report.statement_line}'s page (usable for "
                  f"{settings.portal_link_minutes} minutes):", highlight=False)
    print(portal_link)


def runnable_command(argv0: str | None = None, search_path: str | None = None) -> str:
    """How to run this carryover from the current directory: `carryover` when PATH finds
    this one, else its path (`.venv/bin/carryover` after `make demo`)."""
    me = Path(argv0 or sys.argv[0]).resolve()
    found = shutil.which("carryover", path=search_path)
    if found is not None and Path(found).resolve() == me:
        return "carryover"
    try:
        return str(me.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(me)
