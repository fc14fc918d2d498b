"""`carryover ingest` and `carryover line import`: files in, progress bars, summaries."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from carryover.adapters.cdr_files import CdrFileError, RejectWriter, read_usage
from carryover.cli import app, line_app
from carryover.cli.common import JsonOption, console, engine, fail, now, print_json
from carryover.domain.bulk.state import to_us
from carryover.domain.cycles import CycleError
from carryover.services.ingest import ingest_chunks
from carryover.services.line_import import import_lines

RejectsOption = Annotated[Path | None, typer.Option(
    "--rejects", metavar="PATH", help="Write rejected rows here (CSV: file, row, reason, the "
    "row's fields).")]


def _progress(as_json: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
                    TimeElapsedColumn(), console=console, disable=as_json, transient=False)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="CSV, JSON Lines or "
                                                "Parquet, optionally gzipped.")],
    rejects: RejectsOption = None,
    file_format: Annotated[str | None, typer.Option(
        "--format", metavar="csv|jsonl|parquet", help="Override the format the extension "
        "says.")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows per "
                                            "transaction.")] = 200_000,
    as_json: JsonOption = False,
) -> None:
    """Rate usage files in chunks (one transaction each); re-ingesting a file is a no-op."""
    for path in files:
        if not path.is_file():
            fail(f"{path}: no such file")
    eng = engine()
    started = time.perf_counter()
    now_us = to_us(now())
    sink = None
    total_rejects = []
    with _progress(as_json) as progress:
        task = progress.add_task("ingesting", total=None, rate="-")

        def chunks():
            for path in files:
                try:
                    for chunk, bad in read_usage(path, format=file_format, chunk_rows=chunk_rows,
                                                 now_us=now_us):
                        yield str(path), chunk, bad
                except CdrFileError as exc:
                    fail(str(exc))

        def on_rejects(bad):
            nonlocal sink
            total_rejects.extend(bad[:20])
            if rejects is not None:
                if sink is None:
                    sink = RejectWriter(rejects).__enter__()
                sink.write(bad)

        def advance(n):
            progress.update(task, advance=n)
            done = progress.tasks[0].completed
            progress.update(task, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")
        summary = ingest_chunks(eng, chunks(), f"ingest-{uuid.uuid4().hex[:8]}", on_rejects,
                                advance, long_run=True)
    if sink is not None:
        sink.__exit__(None, None, None)
    summary.files = len(files)
    summary.seconds = time.perf_counter() - started
    data = summary.as_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title="Ingest summary")
    table.add_column("")
    table.add_column("", justify="right")
    for key, value in data.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else
                      str(value))
    console.print(table)
    for reject in total_rejects[:5]:
        console.print(f"rejected {reject.file}:{reject.row}: {reject.reason}", markup=False)
    if summary.rejected and rejects is None:
        console.print("(give --rejects PATH to keep every rejected row)")


@line_app.command("import")
def line_import(
    path: Annotated[Path, typer.Argument(metavar="FILE.csv", help="Columns: msisdn, imsi, "
                                         "account, plan, start.")],
    cycle_day: Annotated[int, typer.Option("--cycle-day", metavar="D", help="Bill-cycle day "
                                           "of accounts created on the fly.")] = 1,
    timezone: Annotated[str, typer.Option("--timezone", metavar="TZ", help="Timezone of "
                                          "accounts created on the fly.")] = "UTC",
    rejects: RejectsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create many lines at once; accounts that do not exist are created."""
    if not path.is_file():
        fail(f"{path}: no such file")
    eng = engine()
    started = time.perf_counter()
    with _progress(as_json) as progress:
        task = progress.add_task("importing lines", total=None, rate="-")

        def advance(n):
            progress.update(task, advance=n)
            done = progress.tasks[0].completed
            progress.update(task, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")
        try:
            summary = import_lines(eng, path, cycle_day, timezone, now(), progress=advance)
        except (ValueError, CycleError) as exc:
            fail(str(exc))
    summary.seconds = time.perf_counter() - started
    if rejects is not None:
        with rejects.open("w", encoding="utf-8") as handle:
            handle.write("file,row,reason\n")
            for row, reason in summary.rejected:
                handle.write(f"{path},{row},\"{reason}\"\n")
    if as_json:
        print_json({**summary.as_dict(), "rejects": [
            {"row": r, "reason": why} for r, why in summary.rejected[:1000]]})
        return
    console.print(f"imported {summary.imported:,} of {summary.rows:,} lines "
                  f"({summary.accounts_created:,} accounts created) in {summary.seconds:.1f} s")
    for row, reason in summary.rejected[:5]:
        console.print(f"rejected {path}:{row}: {reason}", markup=False)
