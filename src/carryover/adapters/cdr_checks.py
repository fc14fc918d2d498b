"""Checks: cells of usage rows in, typed columns (`Chunk`) and `Reject`s out.

One `Checker` serves one file. Given a batch of rows whose cells are text (or
typed values, where the file is typed), it converts each column at once with
pyarrow compute: instants to µs UTC, amounts to int64, units to codes. Every
check yields a mask of the rows it fails; a row failing any is left out of the
chunk and becomes one `Reject` whose reason lists each failure as
`column: what 'value'`, in a fixed order. The text of the values is looked at
only for the bad rows, so a clean batch costs a few vectorized passes. A reject
carries its row's original cells as text (`raw`) and, for JSON Lines, the
original line itself (`original`), read back from the batch's bytes for the
rejected rows only.

What is accepted (the contract of `read_usage`, see `cdr_files`):
- `event_id`, `line`: not empty after stripping.
- instants: ISO 8601, `YYYY-MM-DD`, `T` or a space, `hh:mm[:ss[.f{1,9}]]`, then
  `Z`, `±hh`, `±hhmm` or `±hh:mm`, or nothing: wall time in the file's zone,
  read like `datetime.replace(tzinfo=ZoneInfo(tz))` (fold 0; in a DST gap, the
  offset before it). Digits below 1 µs are cut. `end` before `start` and
  `received_at` before the event's instant are rejected.
- amounts: whole numbers 0 <= n <= 2^50, the bound of one event (domain/bounds.py):
  `bytes`, or `bytes_up` + `bytes_down` (each part and their sum).
- `unit`: data, voice or sms in any case; empty means data.
- A row whose every cell is empty (a blank line) is neither good nor rejected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carryover.adapters.cdr_formats import Lines, TextBatch
from carryover.domain.bounds import MAX_EVENT

UNITS = ("data", "voice", "sms")
_INSTANT_RE = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d"
               r"(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)?$")
_COUNT_RE = r"^\d{1,18}$"
_TOO_LARGE = f"too large (more than 2^50 = {MAX_EVENT}, the largest event)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass(frozen=True)
class Chunk:
    first_row: int            # number of the first row read into this chunk (good or not)
    event_id: np.ndarray      # object (str)
    line: np.ndarray          # object (str): MSISDN, IMSI or line id, stripped
    at: np.ndarray            # int64 µs since the epoch, UTC
    received_at: np.ndarray   # int64 µs UTC (`now_us` where not given)
    amount: np.ndarray        # int64: bytes, seconds or a count, by unit
    unit: np.ndarray          # int8: 0 data, 1 voice, 2 sms
    rating_group: np.ndarray  # object (str or None)
    row: np.ndarray           # int64: the number of each good row
    # The good rows' cells as read (aligned with `row`), so a row refused later (an
    # unknown line) is written to the rejects file as it stood. None: not kept.
    fields: pa.Table | None = None
    lines: Lines | None = None  # JSON Lines: the original lines (then `fields` is None)

    def __len__(self) -> int:
        return len(self.row)

    def originals(self, positions: list[int]) -> list[tuple[dict[str, str], str | None]]:
        """The good rows at `positions` as they stood: their cells as text ({} if not
        kept) and, for JSON Lines, their original line."""
        if self.lines is not None:
            rows = self.row[positions].tolist()
            return [(self.lines.cells(r), self.lines.text(r)) for r in rows]
        if self.fields is None:
            return [({}, None) for _ in positions]
        raws = _raw_rows(self.fields.take(pa.array(positions, pa.int64())))
        return [(raw, None) for raw in raws]


@dataclass(frozen=True)
class Reject:
    file: str
    row: int
    reason: str
    raw: dict[str, str]       # the row's original fields, as text
    original: str | None = None  # JSON Lines: the row's line as it was (no line ending)


def empty_chunk(first_row: int) -> Chunk:
    text, ints = np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    return Chunk(first_row, text, text, ints, ints, ints, np.empty(0, np.int8), text, ints)


def _mask(a: pa.Array) -> np.ndarray:
    return a.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _text(a: pa.Array) -> pa.Array:
    a = a if pa.types.is_string(a.type) else a.cast(pa.string())
    return pc.utf8_trim_whitespace(a.fill_null(""))


class Checker:
    """Turns a `TextBatch` into a `Chunk` and the rejects of its bad rows."""

    def __init__(self, name: str, columns: list[str], now_us: int, tz: ZoneInfo) -> None:
        self.name, self.now_us, self.tz = name, now_us, tz
        self.parts = ("bytes",) if "bytes" in columns else ("bytes_up", "bytes_down")
        self.at_name = "at" if "at" in columns else "end"
        self.problems: list[tuple[np.ndarray, str, str, pa.Array | None]] = []

    def __call__(self, batch: TextBatch) -> tuple[Chunk, list[Reject]]:
        first_row, table, rows, early, lines = batch
        early = [Reject(self.name, *p, lines.text(p.row) if lines else None) for p in early]
        n = table.num_rows
        if n == 0:
            return empty_chunk(first_row), early
        self.problems = []
        cols = {}  # text trimmed; typed columns (integers, timestamps) as they are
        for name in table.column_names:
            c, k = table.column(name).combine_chunks(), name.strip().lower()
            if k in cols and c.null_count == len(c):
                continue  # JSON: an absent key under its lower-case name (the reader's schema)
            typed = pa.types.is_integer(c.type) or pa.types.is_timestamp(c.type)
            cols[k] = c if typed and k not in ("event_id", "line") else _text(c)
        given = {k: _mask(pc.not_equal(v, "") if pa.types.is_string(v.type) else v.is_valid())
                 for k, v in cols.items()}
        no, nothing = np.zeros(n, bool), pa.nulls(n, pa.string())
        text = {k: cols[k] if pa.types.is_string(cols[k].type) else _text(cols[k])
                for k in ("event_id", "line", "unit", "rating_group") if k in cols}
        for k in ("event_id", "line"):
            self._flag(~given.get(k, no), k, "empty")

        at, has_at, at_ok, parsed = np.zeros(n, np.int64), no.copy(), no.copy(), {}
        for k in ("start", "at", "end", "received_at"):  # for the instant, later ones win
            if k in cols:
                values, ok = self._instants(k, cols[k], given[k])
                parsed[k] = (values, given[k] & ok)
                if k != "received_at":
                    at = np.where(given[k], values, at)
                    at_ok = np.where(given[k], ok, at_ok)
                    has_at |= given[k]
        self._flag(~has_at, self.at_name, "empty")
        if "start" in parsed and "end" in parsed:
            (start, s_ok), (end, e_ok) = parsed["start"], parsed["end"]
            self._flag(s_ok & e_ok & (end < start), "end", "before start", cols["end"])
        received = np.full(n, self.now_us, np.int64)
        if "received_at" in parsed:
            values, ok = parsed["received_at"]
            received = np.where(given["received_at"], values, received)
            self._flag(ok & at_ok & (received < at), "received_at",
                       "before the event's instant", cols["received_at"])
        amount = np.zeros(n, np.int64)
        for k in self.parts:
            amount += self._count(k, cols.get(k, nothing), given.get(k, no))
        if len(self.parts) > 1:  # each part is at most 2^50: their sum cannot wrap
            self._flag(amount > MAX_EVENT, " + ".join(self.parts), _TOO_LARGE)

        unit = np.zeros(n, np.int8)
        if "unit" in text:
            code = pc.index_in(pc.utf8_lower(text["unit"]), value_set=pa.array(UNITS))
            self._flag(given["unit"] & ~_mask(code.is_valid()), "unit",
                       "not data, voice or sms", text["unit"])
            unit = code.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int8)

        blank = ~np.logical_or.reduce(list(given.values()))  # a blank line: no record
        bad = self._bad(n) & ~blank
        rejects = self._rejects(table, rows, bad, lines) if bad.any() else []
        if early:
            rejects = sorted(rejects + early, key=lambda r: r.row)
        keep = np.flatnonzero(~bad & ~blank) if (bad | blank).any() else None

        def pick(a: np.ndarray) -> np.ndarray:
            return a if keep is None else a[keep]

        def strings(s: pa.Array | None, few: bool = False) -> np.ndarray:
            if s is None:
                return np.full(len(pick(rows)), None, dtype=object)
            s = s if keep is None else s.take(keep)
            if not few:
                return s.to_numpy(zero_copy_only=False)
            d = s.dictionary_encode()  # few distinct values: share their str objects
            words = np.append(d.dictionary.to_numpy(zero_copy_only=False), None)
            return words[d.indices.fill_null(len(d.dictionary)).to_numpy()]

        group = text.get("rating_group")
        if group is not None:
            group = pc.if_else(given["rating_group"], group, pa.scalar(None, pa.string()))
        chunk = Chunk(first_row, strings(text.get("event_id")), strings(text.get("line")),
                      pick(at), pick(received), pick(amount), pick(unit),
                      strings(group, few=True), pick(rows),
                      None if lines is not None else table if keep is None else table.take(keep),
                      lines)
        return chunk, rejects

    def _bad(self, n: int) -> np.ndarray:
        bad = np.zeros(n, bool)
        for mask, *_ in self.problems:
            bad |= mask
        return bad

    def _flag(self, mask: np.ndarray, column: str, what: str, values: pa.Array | None = None,
              ) -> None:
        if mask.any():
            self.problems.append((mask, column, what, values))

    def _rejects(self, table: pa.Table, rows: np.ndarray, bad: np.ndarray,
                 lines: Lines | None) -> list[Reject]:
        idx = np.flatnonzero(bad)
        reasons: dict[int, list[str]] = {int(i): [] for i in idx}
        for mask, column, what, values in self.problems:
            hit = np.flatnonzero(mask & bad)
            shown = (_text(values.take(hit)).to_pylist() if values is not None
                     else [None] * len(hit))
            for i, v in zip(hit.tolist(), shown, strict=True):
                reasons[i].append(f"{column}: {what}" + ("" if v is None else f" {v[:60]!r}"))
        if lines is not None:
            return [Reject(self.name, r, "; ".join(reasons[int(i)]), lines.cells(r),
                           lines.text(r)) for i, r in zip(idx, rows[idx].tolist(), strict=True)]
        raws = _raw_rows(table.take(idx))
        return [Reject(self.name, int(rows[i]), "; ".join(reasons[int(i)]), raw)
                for i, raw in zip(idx, raws, strict=True)]

    def _count(self, column: str, a: pa.Array, given: np.ndarray) -> np.ndarray:
        """Whole numbers 0 <= n <= 2^50; anything else flags its row (and counts 0)."""
        self._flag(~given, column, "empty")
        if pa.types.is_integer(a.type):
            if pa.types.is_uint64(a.type):  # past int64: compare before any cast
                big = _mask(pc.greater(a.fill_null(0), pa.scalar(MAX_EVENT, pa.uint64())))
                a = pc.if_else(big, pa.scalar(0, pa.uint64()), a)
            else:
                big = np.zeros(len(a), bool)
            values = a.fill_null(0).cast(pa.int64()).to_numpy()
            big |= values > MAX_EVENT
            self._flag(values < 0, column, "negative", a)
            self._flag(big, column, _TOO_LARGE, a)
            return np.where((values < 0) | big, 0, values)
        s = a
        ok = _mask(pc.match_substring_regex(s, _COUNT_RE))
        if ok.all():
            values = s.cast(pa.int64()).to_numpy()
            if int(values.max(initial=0)) <= MAX_EVENT:
                return values
        wrong = given & ~ok
        negative = _mask(pc.match_substring_regex(s, r"^-\d+$"))
        digits = _mask(pc.match_substring_regex(s, r"^\d+$"))
        self._flag(wrong & negative, column, "negative", s)
        self._flag(wrong & ~negative & ~digits, column, "not an integer", s)
        out = np.zeros(len(ok), np.int64)
        idx = np.flatnonzero(ok)
        out[idx] = s.take(idx).cast(pa.int64()).to_numpy()
        big = (wrong & digits) | (out > MAX_EVENT)
        self._flag(big, column, _TOO_LARGE, s)
        return np.where(big, 0, out)

    def _instants(self, column: str, a: pa.Array, given: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Instants as µs UTC, and which parsed; a bad given one flags its row."""
        if pa.types.is_timestamp(a.type):
            stamps = a.cast(pa.timestamp("us", a.type.tz), safe=False)
            out = (stamps.cast(pa.int64()).to_numpy(zero_copy_only=False) if a.type.tz else
                   self._localize(stamps.fill_null(0)))
            return np.where(given, out, 0).astype(np.int64), given.copy()
        s = a
        ok = _mask(pc.match_substring_regex(s, _INSTANT_RE))
        if pc.max(pc.binary_length(s)).as_py() > 26:  # maybe digits below 1 µs: cut them
            s = pc.replace_substring_regex(s, r"(\.\d{6})\d+", r"\1")
        out, idx = np.zeros(len(ok), np.int64), np.flatnonzero(ok)
        sub = s if len(idx) == len(s) else s.take(idx)
        for tz in (None, "UTC"):  # usually all are wall times, or all have an offset
            with contextlib.suppress(pa.ArrowInvalid):
                stamps = sub.cast(pa.timestamp("us", tz))
                out[idx] = self._localize(stamps) if tz is None else stamps.cast(pa.int64())
                break
        else:
            # On a string the regex passed, only an offset can hold "Z", "+" or a third "-".
            aware = _mask(pc.or_(pc.or_(pc.ends_with(s, "Z"), pc.match_substring(s, "+")),
                                 pc.greater(pc.count_substring(s, "-"), 2)))
            for tz in ("UTC", None):
                idx = np.flatnonzero(ok & (aware if tz else ~aware))
                sub = s.take(idx)
                try:
                    stamps = sub.cast(pa.timestamp("us", tz))
                except pa.ArrowInvalid:
                    parses = _parses(sub, tz)
                    ok[idx[~parses]] = False
                    idx = idx[parses]
                    stamps = sub.filter(parses).cast(pa.timestamp("us", tz))
                out[idx] = self._localize(stamps) if tz is None else stamps.cast(pa.int64())
        self._flag(given & ~ok, column, "not an ISO 8601 instant", a)
        return out, ok

    def _localize(self, wall: pa.Array) -> np.ndarray:
        """Wall times in `tz` as µs UTC, read like zoneinfo with fold 0."""
        if self.tz.key == "UTC":
            return wall.cast(pa.int64()).to_numpy()
        early, late = (pc.assume_timezone(wall, self.tz.key, ambiguous="earliest",
                                          nonexistent=gap).cast(pa.int64()).to_numpy()
                       for gap in ("earliest", "latest"))
        values = early.copy()
        gaps = np.flatnonzero(early != late)  # in a DST gap: zoneinfo takes the offset before
        for i, w in zip(gaps, wall.take(gaps).to_pylist(), strict=True):
            values[i] = (w.replace(tzinfo=self.tz) - _EPOCH) // _ONE_US
        return values


def _raw_rows(table: pa.Table) -> list[dict[str, str]]:
    """Each row's cells as text, by column name in the file's order (absent: left out)."""
    text = pa.table([c if pa.types.is_string(c.type) else _as_text(c) for c in table.columns],
                    names=table.column_names).to_pylist()
    return [{k: v for k, v in raw.items() if v is not None} for raw in text]


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):  # ISO 8601, as the checks read it back
        return pa.chunked_array([pc.strftime(c, "%Y-%m-%dT%H:%M:%S" + (
            "%z" if column.type.tz else "")) for c in column.chunks], pa.string())
    return column.cast(pa.string())


def _parses(s: pa.Array, tz: str | None) -> np.ndarray:
    """Which of these regex-checked instants Arrow can read: a day the month lacks
    (the regex allows 31 in all) is the one expected failure; anything else is
    tried one by one."""
    y, m, d = (pc.utf8_slice_codeunits(s, i, j).cast(pa.int64()).to_numpy()
               for i, j in ((0, 4), (5, 7), (8, 10)))
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    exists = d <= _MONTH_DAYS[m - 1] + ((m == 2) & leap)
    try:
        s.filter(exists).cast(pa.timestamp("us", tz))
        return exists
    except pa.ArrowInvalid:
        return np.array([_castable(v, tz) for v in s.to_pylist()], bool)


def _castable(text: str, tz: str | None) -> bool:
    try:
        pa.array([text]).cast(pa.timestamp("us", tz))
        return True
    except pa.ArrowInvalid:
        return False
