"""`carryover ingest` and `carryover line import`: files in, progress bars, summaries."""

from __future__ import annotations

import sys
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

from carryover import memory_tuning
from carryover.adapters.cdr_files import RejectWriter, read_usage
from carryover.cli import app, line_app
from carryover.cli.common import JsonOption, console, fail, now, print_json, uow
from carryover.domain.columnar.state import to_us
from carryover.domain.cycles import CycleError
from carryover.services.ingest.chunks import Committed, IngestStopped, ingest_chunks
from carryover.services.ledger.line_import import import_lines

RejectsOption = Annotated[Path | None, typer.Option(
    "--rejects", metavar="PATH", help="Write every rejected row here, in file order: "
    "file, row, reason, then the original row (CSV; JSON Lines if PATH ends .jsonl). Fix it "
    "and feed it back as it is.")]
AllowRejectsOption = Annotated[bool, typer.Option(
    "--allow-rejects", help="Exit 0 when only rows (not whole files) were rejected.")]

# Rows read and checked at a time; a transaction (--chunk-rows) takes as many of these
# as it needs, and holds only their accepted events' compact columns between them.
READ_ROWS = 200_000
CHUNK_ROWS = 200_000
EXIT_CODES = ("Exit status: 0 every row accepted or a duplicate; 2 a file rejected whole "
              "(unreadable, missing column) or any row rejected (--allow-rejects: 0 when only "
              "rows were).")


def _progress(as_json: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
                    TimeElapsedColumn(), console=console, disable=as_json, transient=False)


def _say(line: str) -> None:
    print(line, file=sys.stderr)


@app.command(epilog=EXIT_CODES)
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="CSV, JSON Lines or "
                                                "Parquet, optionally gzipped.")],
    rejects: RejectsOption = None,
    allow_rejects: AllowRejectsOption = False,
    file_format: Annotated[str | None, typer.Option(
        "--format", metavar="csv|jsonl|parquet", help="Override the format the extension "
        "says.")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows per "
                                            "transaction.")] = CHUNK_ROWS,
    read_rows: Annotated[int, typer.Option("--read-rows", min=1, help="At most this many "
                                           "rows read and checked at a time: a transaction "
                                           "is read in equal parts. Fewer hold less memory.")
                         ] = READ_ROWS,
    as_json: JsonOption = False,
) -> None:
    """Rate usage files in chunks (one transaction each); re-ingesting a file is a no-op."""
    for path in files:
        if not path.is_file():
            fail(f"{path}: no such file")
    memory_tuning.give_back_freed_memory()
    unit = uow()
    started = time.perf_counter()
    now_us = to_us(now())
    sink = RejectWriter(rejects) if rejects is not None else None
    shown: list = []
    whole: list[str] = []   # files rejected whole, as their one line
    empty: list[str] = []
    committed = Committed()

    # A transaction of `chunk_rows` rows is read in equal parts of at most `read_rows`.
    reads = -(-chunk_rows // read_rows)
    read_size = -(-chunk_rows // reads)

    def chunks():
        for path in files:
            seen = 0
            for chunk, bad in read_usage(path, format=file_format,
                                         chunk_rows=read_size, now_us=now_us):
                seen += len(chunk) + len(bad)
                whole.extend(f"{path}: {r.reason}" for r in bad if r.row == 0)
                bad = [r for r in bad if r.row != 0]
                yield str(path), chunk, bad
            if not seen:
                empty.append(f"{path}: empty: no rows to ingest")

    def on_rejects(bad):
        if len(shown) < 5:
            shown.extend(bad[:5 - len(shown)])
        if sink is not None:
            sink.write(bad)

    def on_commit(c: Committed) -> None:
        nonlocal committed
        committed = c

    feed = chunks()
    try:
        with _progress(as_json) as progress:
            task = progress.add_task("ingesting", total=None, rate="-")

            def advance(n):
                progress.update(task, advance=n)
                done = progress.tasks[0].completed
                elapsed = max(time.perf_counter() - started, 1e-9)
                progress.update(task, rate=f"{done / elapsed:,.0f}")
            summary = ingest_chunks(unit, feed, f"ingest-{uuid.uuid4().hex[:8]}", on_rejects,
                                    advance, long_run=True, on_commit=on_commit,
                                    transaction_rows=chunk_rows)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _say(f"carryover: interrupted; {committed}")
        raise
    except Exception as exc:
        raise IngestStopped(committed) from exc
    finally:
        feed.close()  # its read-ahead thread ends here, not at interpreter exit
        if sink is not None:
            sink.close()
    summary.files = len(files)
    summary.seconds = time.perf_counter() - started
    data = {**summary.as_dict(), "files_rejected": len(whole)}
    if as_json:
        print_json(data)
    else:
        table = Table(title="Ingest summary")
        table.add_column("")
        table.add_column("", justify="right")
        for key, value in data.items():
            table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else
                          str(value))
        console.print(table)
        for reject in shown:
            console.print(f"rejected {reject.file}:{reject.row}: {reject.reason}", markup=False)
        if summary.rejected > len(shown):
            console.print(f"... and {summary.rejected - len(shown):,} more rejected rows",
                          markup=False)
        if summary.rejected and rejects is None:
            console.print("(give --rejects PATH to keep every rejected row)")
    for line in empty:
        _say(f"carryover: {line}")
    for line in whole:
        _say(f"carryover: {line} (file rejected whole, nothing of it ingested)")
    if whole or (summary.rejected and not allow_rejects):
        raise typer.Exit(2)


@line_app.command("import", epilog=EXIT_CODES.replace("every row accepted or a duplicate",
                                                      "every line imported"))
def line_import(
    path: Annotated[Path, typer.Argument(metavar="FILE.csv", help="Columns (any case): msisdn, "
                                         "imsi, account, plan, start.")],
    cycle_day: Annotated[int, typer.Option("--cycle-day", metavar="D", help="Bill-cycle day "
                                           "of accounts created on the fly.")] = 1,
    timezone: Annotated[str, typer.Option("--timezone", metavar="TZ", help="Timezone of "
                                          "accounts created on the fly.")] = "UTC",
    rejects: Annotated[Path | None, typer.Option(
        "--rejects", metavar="PATH", help="Write every rejected row here (CSV, file order: "
        "file, row, reason, then the original row). Fix it and import it again as it is.")
    ] = None,
    allow_rejects: AllowRejectsOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create many lines at once; accounts that do not exist are created."""
    if not path.is_file():
        fail(f"{path}: no such file")
    unit = uow()
    started = time.perf_counter()
    with _progress(as_json) as progress:
        task = progress.add_task("importing lines", total=None, rate="-")

        def advance(n):
            progress.update(task, advance=n)
            done = progress.tasks[0].completed
            progress.update(task, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")
        try:
            summary = import_lines(unit, path, cycle_day, timezone, now(), progress=advance)
        except (ValueError, CycleError) as exc:
            fail(str(exc))
    summary.seconds = time.perf_counter() - started
    if rejects is not None:
        summary.write_rejects(rejects, path)
    if as_json:
        print_json({**summary.as_dict(), "rejects": [
            {"row": r, "reason": why} for r, why in summary.rejected[:1000]]})
    else:
        console.print(f"imported {summary.imported:,} of {summary.rows:,} lines "
                      f"({summary.accounts_created:,} accounts created) in "
                      f"{summary.seconds:.1f} s")
        for row, reason in summary.rejected[:5]:
            console.print(f"rejected {path}:{row}: {reason}", markup=False)
        if len(summary.rejected) > 5:
            console.print(f"... and {len(summary.rejected) - 5:,} more rejected rows",
                          markup=False)
    if not summary.rows and not summary.header:
        _say(f"carryover: {path}: empty: no lines to import")
    elif not summary.rows:
        _say(f"carryover: {path}: no rows after the header: no lines to import")
    if summary.rejected and not allow_rejects:
        raise typer.Exit(2)
