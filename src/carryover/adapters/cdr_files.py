"""Usage files (CDRs) in, validated columnar chunks out.

The packet core hands the operator files of usage records: CSV, JSON Lines or
Parquet, maybe gzipped. `read_usage` streams one file in chunks of at most
`chunk_rows` rows, so memory stays bounded whatever the file's size, and turns
each chunk into a `Chunk` of numpy arrays (the shape the vectorized rating core
takes) plus the `Reject`s of its bad rows. Parsing (`cdr_formats`) and checking
(`cdr_checks`) run one chunk ahead on a thread of their own, overlapping with
what the caller does with the last chunk; two chunks are in memory at once (the
one the caller holds and the one being read).

Every cell is read as it stands (text, or a typed value where the file is
typed) and converted column by column with pyarrow compute, so a bad value
costs its row, never the file: the row becomes a `Reject` naming the column and
the value, and the good rows of the same chunk go on. Rows are numbered from 1
in data order (CSV: line number minus the header line; JSON Lines: line number;
see `cdr_formats`); `Chunk.first_row` is the number of the first row read into
the chunk, good or not, so consecutive chunks partition the file.

Columns: `event_id`, `line`, the instant (`at`, or `start`/`end`: `end` when
given, else `at`, else `start`), the amount (`bytes`, or `bytes_up` +
`bytes_down`; seconds for voice, a count for SMS; whole numbers below 10^18),
and optionally `unit` (data|voice|sms, any case, empty means data),
`rating_group` (empty means none) and `received_at` (empty means `now_us`).
Instants are ISO 8601 (date, `T` or a space, hh:mm[:ss[.fraction]], optional
`Z` or ±hh[:mm]); one without an offset is wall time in `default_tz`, read like
`datetime.replace(tzinfo=ZoneInfo(tz))` (fold 0). Digits below 1 µs are cut.

Column names match in any case and around spaces (`Event_ID` is `event_id`);
other columns are ignored. A file without a required column (or with a column
named twice) is rejected whole: one `Reject` with row 0 naming the columns, an
empty chunk, and nothing more (one reject per row would be as big as the file).
JSON Lines has no header: the keys of its first object stand for one, a key
absent or null in a later row reads as an empty cell, and a reject's `raw`
holds only the keys its line has. A row whose every cell is empty (a blank line)
is skipped, neither good nor rejected. A file that cannot be read at all (not
found, named .gz but not gzip, not Parquet, not UTF-8, a truncated gzip) raises
`CdrFileError`; an empty file yields nothing.
"""

from __future__ import annotations

import csv
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pyarrow as pa

from carryover.adapters.cdr_checks import UNITS, Checker, Chunk, Reject, empty_chunk
from carryover.adapters.cdr_formats import ORIGINAL_LINE, REASON_KEYS, is_gzip, sources

__all__ = ["FORMATS", "UNITS", "CdrFileError", "Chunk", "Reject", "RejectWriter",
           "detect_format", "read_usage", "write_rejects"]

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
             ".parquet": "parquet"}


class CdrFileError(ValueError):
    """The file as a whole cannot be read (its rows are not even reached)."""


def detect_format(path: str | Path, format: str | None = None) -> str:
    """The format named, else the one the file's extension (before any .gz) says."""
    if format is not None:
        if format not in FORMATS:
            raise CdrFileError(f"{path}: unknown format {format!r} (csv, jsonl or parquet)")
        return format
    p = Path(path)
    suffix = Path(p.stem).suffix if p.suffix.lower() == ".gz" else p.suffix
    try:
        return _SUFFIXES[suffix.lower()]
    except KeyError:
        raise CdrFileError(f"{path}: cannot tell the format from the name; "
                           "pass format (csv, jsonl or parquet)") from None


def read_usage(path: str | Path, *, format: str | None = None, chunk_rows: int = 200_000,
               now_us: int, default_tz: str = "UTC") -> Iterator[tuple[Chunk, list[Reject]]]:
    """Stream `path` as (good rows, rejects) per chunk of at most `chunk_rows` rows."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    fmt, name, tz = detect_format(path, format), str(path), ZoneInfo(default_tz)
    if not Path(path).is_file():
        raise CdrFileError(f"{name}: no such file")
    if Path(path).suffix.lower() == ".gz" and not is_gzip(Path(path)):
        raise CdrFileError(f"{name}: the name ends in .gz but the file is not gzip")

    def checked() -> Iterator[tuple[Chunk, list[Reject]]]:
        batches = sources(fmt, Path(path), chunk_rows)
        columns = next(batches)
        if columns is None:  # an empty file
            return
        columns = [c.strip().lower() for c in columns]  # headers match in any case
        if problem := _missing(columns) or _twice(columns):
            yield empty_chunk(0), [Reject(name, 0, problem, {})]
            return
        check = Checker(name, columns, now_us, tz)
        yield from map(check, batches)

    try:
        yield from _ahead(checked())
    except (OSError, EOFError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise CdrFileError(f"{name}: {exc}") from exc


def _missing(columns: list[str]) -> str:
    have, gone = set(columns), [c for c in ("event_id", "line") if c not in columns]
    if not have & {"at", "start", "end"}:
        gone.append("at (or start/end)")
    if "bytes" not in have and not {"bytes_up", "bytes_down"} <= have:
        gone.append("bytes (or bytes_up + bytes_down)")
    return f"missing column {', '.join(gone)}" if gone else ""


def _twice(columns: list[str]) -> str:
    twice = sorted({c for c in columns if columns.count(c) > 1})
    return f"column named twice: {', '.join(twice)}" if twice else ""


T = TypeVar("T")


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, the next one produced on a thread while the caller works.

    At most one item is produced ahead: the thread starts on the next one only once
    the caller has taken the last (`room`), so two chunks are in memory, not three."""
    out: queue.Queue = queue.Queue(maxsize=1)
    room = threading.Semaphore(1)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def wait_for_room() -> bool:
        while not stop.is_set():
            if room.acquire(timeout=0.05):
                return True
        return False

    def run() -> None:
        try:
            iterator = iter(items)
            while wait_for_room():
                try:
                    item = next(iterator)
                except StopIteration:
                    put(("end", None))
                    break
                if not put(("item", item)):
                    break
        except BaseException as exc:
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    worker = threading.Thread(target=run, name="cdr-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = out.get()
            room.release()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


# --- rejects out ---

class RejectWriter:
    """Rejected rows written as they come, so they can be fixed and fed back as they are.

    Each reject is its reason columns (`file`, `row`, `reason`), then the original
    row. In a CSV file (the default): the original header's fields. In a JSON Lines
    file (a PATH ending .jsonl, .ndjson or .json): one object per line, the reason
    keys, then the original line's object exactly, its text as it was after its
    `{` (same keys, order, values and JSON types); a row from a CSV or Parquet file
    gets its fields as text. A line that was not a JSON object is kept whole as
    text: `{"file", "row", "reason", "original_line": "<the line>"}` (bytes that
    were not UTF-8 as `\\udcXX` escapes, so nothing is lost); `ingest` reads such a
    line as the line it wraps (`cdr_formats`), so fixing the text inside fixes
    the row. `carryover ingest` ignores the reason columns, so a fixed rejects file
    is ingested as it stands. CSV fields are named after the first reject; any name
    that header lacks is appended as a `name=value` cell so nothing is lost. A
    reject of a whole file (row 0, no fields) is not a row: not written.
    """

    REASON_COLUMNS = REASON_KEYS

    def __init__(self, path: str | Path) -> None:
        self.jsonl = Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json")
        # Held open across calls to write: closed by close() or the with-block.
        self._file = Path(path).open("w", newline="", encoding="utf-8")  # noqa: SIM115
        self._out = csv.writer(self._file, lineterminator="\n")  # sed-friendly
        self._fields: list[str] | None = None
        self._waiting: list[Reject] = []
        self.written = 0

    def write(self, rejects: Iterable[Reject]) -> None:
        for r in rejects:
            if r.row == 0:
                continue
            self.written += 1
            if self.jsonl:
                self._file.write(self._json_line(r) + "\n")
                continue
            if self._fields is None:
                if not r.raw:
                    self._waiting.append(r)
                    continue
                self._header(list(self._original(r)))
            self._row(r)

    def _json_line(self, r: Reject) -> str:
        reason = {"file": r.file, "row": r.row, "reason": r.reason}
        if r.original is None:  # a CSV or Parquet row: its cells
            return json.dumps({**reason, **self._original(r)}, ensure_ascii=False)
        obj = _object(r.original)
        if obj is None or not _utf8(r.original):
            return json.dumps({**reason, ORIGINAL_LINE: r.original},
                              ensure_ascii=not _utf8(r.original))
        # A rejects file fed back brings its own reason keys: they are not the row's.
        body = _after_leading(r.original.strip(), self.REASON_COLUMNS)
        rest = None if body is None else _object("{" + body)
        if rest is None or any(k in self.REASON_COLUMNS for k in rest):  # one further on
            return json.dumps({**reason, **{k: v for k, v in obj.items()
                                            if k not in self.REASON_COLUMNS}},
                              ensure_ascii=False)
        head = json.dumps(reason, ensure_ascii=False)
        return head if body.startswith("}") else f"{head[:-1]}, {body}"

    def _original(self, r: Reject) -> dict[str, str]:
        # A rejects file fed back brings its own reason columns: they are not the row's.
        return {k: v for k, v in r.raw.items() if k not in self.REASON_COLUMNS}

    def _header(self, fields: list[str]) -> None:
        self._fields = fields
        self._out.writerow([*self.REASON_COLUMNS, *fields])
        waiting, self._waiting = self._waiting, []
        for r in waiting:
            self._row(r)

    def _row(self, r: Reject) -> None:
        fields, raw = self._fields or [], self._original(r)
        extra = [f"{k}={v}" for k, v in raw.items() if k not in fields]
        if not raw and r.original is not None:  # a JSON line that was no object: its text
            extra.append(f"{ORIGINAL_LINE}={r.original}")
        self._out.writerow([r.file, r.row, r.reason, *(raw.get(k, "") for k in fields),
                            *extra])

    def close(self) -> None:
        if self._fields is None and not self.jsonl:
            self._header([])
        self._file.close()

    def __enter__(self) -> RejectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_rejects(path: str | Path, rejects: Iterable[Reject]) -> None:
    """Write every reject of `rejects` (any iterable, consumed lazily) to one file."""
    with RejectWriter(path) as out:
        out.write(rejects)


def _object(line: str) -> dict[str, Any] | None:
    """The JSON object a line holds, its keys in order (None: not an object)."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _after_leading(line: str, keys: tuple[str, ...]) -> str | None:
    """The text of a JSON object's line after its `{` and after any leading members
    named in `keys` (None if the line does not scan as an object from its start).

    A reject fed back again keeps the rest of its line byte for byte this way."""
    at, decode = line.index("{") + 1, json.JSONDecoder().raw_decode
    try:
        while True:
            body = line[at:].lstrip()
            if not body.startswith('"'):
                return body
            start = len(line) - len(body)
            key, end = json.decoder.scanstring(line, start + 1)
            if key not in keys:
                return body
            colon = line[end:].lstrip()
            if not colon.startswith(":"):
                return None
            value = len(line) - len(colon) + 1
            value += len(line[value:]) - len(line[value:].lstrip())
            _, at = decode(line, value)
            rest = line[at:].lstrip()
            at = len(line) - len(rest) + (1 if rest.startswith(",") else 0)
    except ValueError:
        return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # bytes the file had that were not UTF-8 (surrogateescape)
        return False
