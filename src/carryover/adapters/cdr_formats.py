"""Usage files as tables of cells, chunk by chunk: CSV, JSON Lines and Parquet.

A source reads one file and yields, first, its column names (None for a file
with nothing in it), then `TextBatch`es of at most `chunk_rows` rows. Cells
come as text, except where the file itself is typed (integers and timestamps
in Parquet, integers in JSON), which the checks (`cdr_checks`) read directly.
Each batch carries the number of every row in it and the rows it could not
even split into fields (`Problem`s), so the checks can reject those by number.

Rows are numbered from 1 in data order: a CSV's header is not a row, blank
lines count (and are skipped later); a JSON line's number is its line number.
CSV row numbers count records, so after a quoted field that spans lines they
run behind the line numbers.

CSV is parsed by Arrow on several threads, which then cannot tell where a
malformed row (wrong number of fields) sits; on the first such row the reader
starts over on one thread, skips the rows it already gave out, and numbers the
malformed rows from there. JSON Lines is parsed by Arrow a batch of lines at a
time; where Arrow would type a value differently from its text (an integer too
big for a double, a timestamp-looking string, an object) or cannot parse a
line, that batch is read line by line with `json` instead. Both paths give the
same cells, so results never depend on `chunk_rows`.

A JSON Lines batch also keeps its bytes and where each line starts and ends
(`Lines`), so a rejected row is written out as its original line, not as cells
rebuilt from the parsed table: only the rejected rows' lines are ever looked at
again. A line of a rejects file that wraps a line which was not a JSON object
(`{"file", "row", "reason", "original_line": "<text>"}`, see `cdr_files`) is read
as the line it wraps, so a fixed text ingests and an unfixed one is rejected
again, with the same text.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

# Arrow's streaming CSV reader reads and parses blocks ahead of the one asked for,
# so the block size sets how much of the file it holds: with 4 MiB blocks, 120-170 MiB
# of a 10,000,000-row file (pyarrow.total_allocated_bytes); with 1 MiB, about 57 MiB,
# at the same speed (docs/performance.md, "Bulk ingestion").
_CSV_BLOCK = 1 << 20
_INSTANTS = ("at", "start", "end", "received_at")


class Problem(NamedTuple):
    row: int
    reason: str
    raw: dict[str, str]


# The key holding, in a JSON Lines rejects file, the text of a line that was not a
# JSON object (RejectWriter), and the reason keys written beside it.
ORIGINAL_LINE = "original_line"
REASON_KEYS = ("file", "row", "reason")
_ORIGINAL_LINE_KEY = f"\"{ORIGINAL_LINE}\"".encode()


class Lines(NamedTuple):
    """The original lines of a JSON Lines batch, by row number (a row is a line)."""
    first_row: int             # the row number of the first line in `data`
    data: bytes                # the batch's bytes, newlines included
    starts: np.ndarray         # int64: offset of each line in `data`
    ends: np.ndarray           # int64: offset of each line's newline
    unwrapped: dict[int, bytes]  # rows that wrapped an original line: the line wrapped

    def raw(self, row: int) -> bytes:
        if row in self.unwrapped:
            return self.unwrapped[row]
        i = row - self.first_row
        line = self.data[self.starts[i]:self.ends[i]]
        return line[:-1] if line.endswith(b"\r") else line

    def text(self, row: int) -> str:
        """The line as it was, without its line ending; bytes that are not UTF-8 kept as
        surrogates (`surrogateescape`), so the text encodes back to the same bytes."""
        return self.raw(row).decode("utf-8", "surrogateescape")

    def cells(self, row: int) -> dict[str, str]:
        """The line's object as cells of text (absent or null: left out), as the
        checks read them; {} for a line that is not a JSON object."""
        obj = _loads(self.raw(row))
        if not isinstance(obj, dict):
            return {}
        return {k: cell for k, v in obj.items() if (cell := text(v)) is not None}


class TextBatch(NamedTuple):
    first_row: int        # number of the first row read into this batch
    table: pa.Table       # the rows that split into fields
    rows: np.ndarray      # int64: the number of each of them
    problems: list[Problem]  # rows that did not
    lines: Lines | None = None  # JSON Lines: the original lines; None: CSV, Parquet


def sources(fmt: str, path: Path, chunk_rows: int) -> Iterator[Any]:
    """The column names (or None), then the file's `TextBatch`es."""
    return {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[fmt](path, chunk_rows)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


# --- CSV ---

class _Restart(Exception):
    """A malformed row showed up while parsing on several threads."""


def _csv(path: Path, chunk_rows: int) -> Iterator[Any]:
    with _open_text(path) as f:
        header = next(csv.reader(f), None)
    yield header
    if header is None:
        return
    given = 0  # rows given out so far, all well-formed while on several threads
    for threads in (True, False):
        reader = _CsvChunks(path, header, chunk_rows, threads)
        try:
            for batch in reader.batches(skip=given):
                given = batch.first_row - 1 + len(batch.rows) + len(batch.problems)
                yield batch
            return
        except _Restart:
            continue


def _open_text(path: Path) -> TextIO:
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


class _CsvChunks:
    def __init__(self, path: Path, header: list[str], chunk_rows: int, threads: bool) -> None:
        self.path, self.header, self.chunk_rows, self.threads = path, header, chunk_rows, threads
        self.skipped: list[int] = []       # numbers of malformed rows not yet passed
        self.problems: list[Problem] = []  # and what was wrong with them
        self.restart = False

    def _invalid(self, row: pcsv.InvalidRow) -> str:
        if self.threads:  # no row numbers on several threads: start over on one
            self.restart = True
            return "skip"
        number = row.number - 1  # physical line, the header is line 1
        fields = next(csv.reader([row.text]), [])
        self.skipped.append(number)
        self.problems.append(Problem(number, f"{len(fields)} fields, the header has "
                                     f"{len(self.header)}",
                                     dict(zip(self.header, fields, strict=False))))
        return "skip"

    def batches(self, skip: int) -> Iterator[TextBatch]:
        gz = "gzip" if is_gzip(self.path) else None
        # Arrow holds the handler, a Python callable, in tasks of its own threads and
        # lets go of it shortly after the reader is done. A release that comes while the
        # interpreter shuts down aborts the process ("terminate called without an active
        # exception", exit 134, after the work is done), so this waits for it: the
        # handler's reference count is back where it was once Arrow has let go.
        handler = self._invalid  # one bound method, counted (each access makes a new one)
        unheld = sys.getrefcount(handler)
        with pa.input_stream(str(self.path), compression=gz) as stream:
            reader = pcsv.open_csv(
                stream, read_options=pcsv.ReadOptions(use_threads=self.threads,
                                                      block_size=_CSV_BLOCK),
                parse_options=pcsv.ParseOptions(invalid_row_handler=handler,
                                                ignore_empty_lines=False, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(self.header, pa.string()),
                    strings_can_be_null=False))
            try:
                pending: list[pa.RecordBatch] = []
                held, next_row, done = 0, skip + 1, False
                while not done:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        done = True
                    if self.restart:
                        raise _Restart
                    if not done:
                        if skip:  # given out before a restart: all well-formed, so count rows
                            cut = min(skip, batch.num_rows)
                            batch, skip = batch.slice(cut), skip - cut
                        pending.append(batch)
                        held += batch.num_rows
                    while held >= self.chunk_rows or (done and (held or self.problems)):
                        table = pa.Table.from_batches(pending, reader.schema)
                        take = min(self.chunk_rows, held)
                        pending, held = table.slice(take).to_batches(), held - take
                        first, rows = next_row, _numbers(next_row, take, self.skipped)
                        next_row = int(rows[-1]) + 1 if take else next_row
                        upto = next_row if held or not done else 1 << 62
                        here = [p for p in self.problems if p.row < upto]
                        self.problems = [p for p in self.problems if p.row >= upto]
                        self.skipped = [r for r in self.skipped if r >= next_row]
                        yield TextBatch(first, table.slice(0, take), rows, here)
            finally:
                reader.close()
                del reader
                patience = time.monotonic() + 1.0  # at most a second
                while sys.getrefcount(handler) > unheld and time.monotonic() < patience:
                    time.sleep(0.001)


def _numbers(start: int, n: int, skipped: list[int]) -> np.ndarray:
    """The numbers of n well-formed rows from `start` on, stepping over malformed ones."""
    rows = np.arange(start, start + n, dtype=np.int64)
    for number in sorted(skipped):
        rows[rows >= number] += 1
    return rows


# --- JSON Lines ---

def _jsonl(path: Path, chunk_rows: int) -> Iterator[Any]:
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        head = f.read(1 << 20)
        first = next((o for o in (_loads(_unwrap(x)[0]) for x in head.split(b"\n")[:1000])
                      if isinstance(o, dict)), None)
        if first is None and not head.strip():
            yield None
            return
        yield list(first or {})
        # Strings in the first object stay strings: Arrow would make timestamps of some.
        as_text = {k for k, v in (first or {}).items() if isinstance(v, str)} | set(_INSTANTS)
        number = 0
        for data, ends in _line_blocks(chain([head], iter(lambda: f.read(1 << 22), b"")),
                                       chunk_rows):
            starts = np.concatenate(([0], ends[:-1] + 1))
            view = np.frombuffer(data, np.uint8)
            blank = (ends == starts) | ((ends == starts + 1) & (view[starts] == 13))
            rows = np.flatnonzero(~blank).astype(np.int64) + number + 1
            first_row, number = number + 1, number + len(ends)
            table = _json_fast(data, len(rows), as_text) if len(rows) else None
            if table is not None and ORIGINAL_LINE not in table.column_names:
                yield TextBatch(first_row, table, rows, [], Lines(first_row, data, starts, ends,
                                                                  {}))
            else:
                lines = [data[i:j] for i, j in zip(starts[~blank], ends[~blank], strict=True)]
                unwrapped: dict[int, bytes] = {}
                yield TextBatch(first_row, *_json_slow(lines, rows, unwrapped),
                                Lines(first_row, data, starts, ends, unwrapped))


def _line_blocks(blocks: Iterator[bytes], chunk_rows: int,
                 ) -> Iterator[tuple[bytes, np.ndarray]]:
    """Bytes of `chunk_rows` whole lines each (the last: what is left), with the
    offset of each line's newline."""
    pieces, lines = [], 0
    for block in blocks:
        pieces.append(block)
        lines += block.count(b"\n")
        if lines < chunk_rows:
            continue
        data = b"".join(pieces)
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        start = 0
        for k in range(lines // chunk_rows):
            cut = ends[k * chunk_rows: (k + 1) * chunk_rows]
            yield data[start:cut[-1] + 1], cut - start
            start = int(cut[-1]) + 1
        pieces, lines = [data[start:]], lines % chunk_rows
    data = b"".join(pieces)
    if data.strip():
        data = data if data.endswith(b"\n") else data + b"\n"
        yield data, np.flatnonzero(np.frombuffer(data, np.uint8) == 10)


def _loads(text: bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_fast(data: bytes, n: int, as_text: set[str]) -> pa.Table | None:
    """Arrow's parser on the whole batch; None where its typing would change a value."""
    schema = pa.schema([(k, pa.string()) for k in sorted(as_text)])
    try:
        table = pjson.read_json(pa.BufferReader(data), read_options=pjson.ReadOptions(
            block_size=1 << 20), parse_options=pjson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != n:  # e.g. a line of spaces, which Arrow skips
        return None
    columns = []
    for col in table.columns:
        t = col.type
        if pa.types.is_string(t) or pa.types.is_integer(t):
            columns.append(col)
        elif pa.types.is_null(t) or pa.types.is_boolean(t):
            columns.append(col.cast(pa.string()))
        elif pa.types.is_floating(t):
            big = pc.max(pc.abs(col)).as_py()
            if big is not None and big >= 2.0 ** 53:
                return None  # maybe an integer too large for a double: let Python read it
            columns.append(pa.array([text(v) for v in col.to_pylist()], pa.string()))
        else:
            return None  # timestamps, objects, lists: only the slow path keeps their text
    return pa.table(columns, names=table.column_names)


def text(value: Any) -> str | None:
    """A JSON value as the text of its cell (both JSON paths agree on it)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2.0 ** 53:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _unwrap(line: bytes) -> tuple[bytes, bool]:
    """The line a rejects file's line wraps (and True), else the line itself."""
    if _ORIGINAL_LINE_KEY not in line:  # the usual case, decided without parsing
        return line, False
    obj = _loads(line)
    if (isinstance(obj, dict) and isinstance(obj.get(ORIGINAL_LINE), str)
            and set(obj) - set(REASON_KEYS) == {ORIGINAL_LINE}):
        return obj[ORIGINAL_LINE].encode("utf-8", "surrogateescape"), True
    return line, False


def _json_slow(lines: list[bytes], rows: np.ndarray, unwrapped: dict[int, bytes],
               ) -> tuple[pa.Table, np.ndarray, list]:
    objects, good, problems = [], [], []
    for line, number in zip(lines, rows.tolist(), strict=True):
        line, wrapped = _unwrap(line)
        if wrapped:
            unwrapped[number] = line
        obj = _loads(line)
        if isinstance(obj, dict):
            objects.append(obj)
            good.append(number)
        else:
            shown = line.decode("utf-8", "replace").strip()[:60]
            problems.append(Problem(number, f"not a JSON object: {shown!r}", {}))
    keys = list(dict.fromkeys(k for obj in objects for k in obj))
    table = pa.table({k: pa.array([text(o.get(k)) for o in objects], pa.string())
                      for k in keys} if keys else {"": pa.nulls(len(objects), pa.string())})
    return table, np.asarray(good, dtype=np.int64), problems


# --- Parquet ---

def _parquet(path: Path, chunk_rows: int) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        if is_gzip(path):  # Parquet needs to seek: inflate to a temporary file first
            tmp = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".parquet"))
            with gzip.open(path, "rb") as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
            tmp.flush()
            path = Path(tmp.name)
        pf = pq.ParquetFile(path)
        yield pf.schema_arrow.names
        number, pending = 1, []
        for batch in pf.iter_batches(batch_size=chunk_rows):
            pending.append(batch)
            held = sum(b.num_rows for b in pending)
            while held >= chunk_rows:  # row groups may cut batches short: top them up
                table = pa.Table.from_batches(pending)
                pending, held = table.slice(chunk_rows).to_batches(), held - chunk_rows
                yield _typed(number, table.slice(0, chunk_rows))
                number += chunk_rows
        if pending and (table := pa.Table.from_batches(pending)).num_rows:
            yield _typed(number, table)


def _typed(first_row: int, table: pa.Table) -> TextBatch:
    """Integers, strings and timestamps stay as they are; anything else becomes text."""
    columns = [c if pa.types.is_string(c.type) or pa.types.is_timestamp(c.type) or
               (pa.types.is_integer(c.type) and c.type != pa.uint64()) else _as_text(c)
               for c in table.columns]
    rows = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
    return TextBatch(first_row, pa.table(columns, names=table.column_names), rows, [])


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    try:
        return column.cast(pa.string())
    except pa.ArrowNotImplementedError:  # lists, structs: their JSON
        return pa.array([None if v is None else json.dumps(v, default=str)
                         for v in column.to_pylist()], pa.string())
