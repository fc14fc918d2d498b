"""Unit tests for carryover.adapters.cdr_files (usage files in, chunks and rejects out).

Instants are checked against zoneinfo by hand: 2026-01-10T12:00Z is
1768046400 s after the epoch (20463 days * 86400 + 12 * 3600); America/New_York
is UTC-5 in January, UTC-4 from 2026-03-08 03:00 local (02:00-03:00 does not
exist) and back to UTC-5 on 2026-11-01 at 02:00 local (01:00-02:00 twice).
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carryover.adapters import cdr_formats
from carryover.adapters.cdr_files import (
    CdrFileError,
    Chunk,
    Reject,
    RejectWriter,
    detect_format,
    read_usage,
    write_rejects,
)

NOW = 1_800_000_000_000_000
T0 = 1_768_046_400_000_000  # 2026-01-10T12:00:00Z in µs
COLUMNS = ["event_id", "line", "at", "bytes", "unit", "rating_group", "received_at"]


def us(text: str, tz: str = "UTC") -> int:
    """An ISO instant as µs UTC, by the rule of zoneinfo (naive: wall time in tz, fold 0)."""
    at = datetime.fromisoformat(text)
    at = at.replace(tzinfo=ZoneInfo(tz)) if at.tzinfo is None else at
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // (datetime.resolution)


def write(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    """Rows as CSV, JSON Lines or Parquet (by suffix, .gz compressed) with `columns`."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    gz = path.suffix == ".gz"
    fmt = Path(path.stem).suffix if gz else path.suffix
    plain = path.with_suffix("") if gz else path
    if fmt == ".csv":
        with plain.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(columns)
            out.writerows([[r.get(c, "") for c in columns] for r in rows])
    elif fmt in (".jsonl", ".ndjson", ".json"):
        plain.write_text("".join(json.dumps({c: r[c] for c in columns if c in r}) + "\n"
                                 for r in rows), encoding="utf-8")
    else:
        pq.write_table(pa.table({c: pa.array([r.get(c) for r in rows]) for c in columns}),
                       plain, row_group_size=max(1, len(rows) // 3))
    if gz:
        path.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    return path


def read_all(path: Path, **kw: Any) -> tuple[list[Chunk], list[Reject]]:
    chunks, rejects = [], []
    for chunk, bad in read_usage(path, now_us=kw.pop("now_us", NOW), **kw):
        chunks.append(chunk)
        rejects.extend(bad)
    return chunks, rejects


def good_rows(chunks: list[Chunk]) -> list[tuple]:
    return [(int(c.row[i]), c.event_id[i], c.line[i], int(c.at[i]), int(c.received_at[i]),
             int(c.amount[i]), int(c.unit[i]), c.rating_group[i])
            for c in chunks for i in range(len(c))]


def row(event_id: str = "e1", line: str = "L1", at: str = "2026-01-10T12:00:00Z",
        bytes: Any = "100", **more: Any) -> dict[str, Any]:
    return {"event_id": event_id, "line": line, "at": at, "bytes": bytes, **more}


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", ["u.csv", "u.csv.gz", "u.jsonl", "u.ndjson.gz", "u.parquet",
                                  "u.parquet.gz", "u.json"])
def test_every_format_reads_the_same_rows(tmp_path: Path, name: str) -> None:
    rows = [row("e1", "L1", "2026-01-10T12:00:00Z", "100"),
            row("e2", " 4915112345678 ", "2026-01-10T14:00:00+02:00", "0", unit="voice",
                rating_group="hotspot", received_at="2026-01-10T13:00:00Z"),
            row("e3", "L3", "2026-01-10 07:00", "7", unit="SMS", rating_group="",
                received_at="")]
    chunks, rejects = read_all(write(tmp_path / name, rows, COLUMNS))
    assert rejects == []
    assert good_rows(chunks) == [
        (1, "e1", "L1", T0, NOW, 100, 0, None),
        (2, "e2", "4915112345678", T0, T0 + 3600 * 10**6, 0, 1, "hotspot"),
        (3, "e3", "L3", T0 - 5 * 3600 * 10**6, NOW, 7, 2, None),
    ]
    c = chunks[0]
    assert (c.event_id.dtype, c.line.dtype, c.rating_group.dtype) == (object,) * 3
    assert (c.at.dtype, c.received_at.dtype, c.amount.dtype, c.row.dtype) == (np.int64,) * 4
    assert c.unit.dtype == np.int8
    assert c.first_row == 1


def test_format_by_name_or_argument(tmp_path: Path) -> None:
    assert detect_format("x.CSV") == "csv"
    assert detect_format("a/b.ndjson.gz") == "jsonl"
    assert detect_format("x.parquet.gz") == "parquet"
    assert detect_format("x.dat", "jsonl") == "jsonl"
    odd = write(tmp_path / "u.csv", [row()])
    renamed = odd.rename(tmp_path / "u.cdr")
    with pytest.raises(CdrFileError, match="cannot tell the format"):
        read_all(renamed)
    with pytest.raises(CdrFileError, match="unknown format"):
        read_all(renamed, format="xml")
    assert len(good_rows(read_all(renamed, format="csv")[0])) == 1


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv.gz", [row()])
    hidden = path.rename(tmp_path / "u.csv")  # gzip bytes under a plain name
    assert len(good_rows(read_all(hidden)[0])) == 1


def test_unreadable_files_raise(tmp_path: Path) -> None:
    with pytest.raises(CdrFileError, match="no such file"):
        read_all(tmp_path / "absent.csv")
    broken = tmp_path / "b.csv.gz"
    broken.write_bytes(gzip.compress(b"event_id,line,at,bytes\n" * 100)[:30])
    with pytest.raises(CdrFileError):
        read_all(broken)
    fake = tmp_path / "f.parquet"
    fake.write_text("not parquet")
    with pytest.raises(CdrFileError):
        read_all(fake)


def test_an_empty_file_has_no_chunks(tmp_path: Path) -> None:
    for name in ("e.csv", "e.jsonl"):
        (tmp_path / name).write_text("")
        assert read_all(tmp_path / name) == ([], [])
    (tmp_path / "h.csv").write_text("event_id,line,at,bytes\n")
    assert read_all(tmp_path / "h.csv") == ([], [])


# --------------------------------------------------------------------------- columns


def test_the_instant_is_end_when_given_else_at_else_start(tmp_path: Path) -> None:
    rows = [{"event_id": "a", "line": "L", "start": "2026-01-10T11:00Z",
             "end": "2026-01-10T12:00Z", "bytes": "1"},
            {"event_id": "b", "line": "L", "start": "2026-01-10T11:00Z", "end": "",
             "bytes": "1"},
            {"event_id": "c", "line": "L", "start": "", "end": "2026-01-10T12:00Z",
             "bytes": "1"}]
    chunks, rejects = read_all(write(tmp_path / "s.csv", rows))
    assert rejects == []
    assert [r[3] for r in good_rows(chunks)] == [T0, T0 - 3600 * 10**6, T0]
    with_at = [{**r, "at": "2026-01-10T10:00Z"} for r in rows]
    chunks, _ = read_all(write(tmp_path / "t.csv", with_at))
    assert [r[3] for r in good_rows(chunks)] == [T0, T0 - 2 * 3600 * 10**6, T0]


def test_bytes_up_plus_bytes_down(tmp_path: Path) -> None:
    rows = [{"event_id": "a", "line": "L", "at": "2026-01-10T12:00Z", "bytes_up": "30",
             "bytes_down": "12"}]
    for name in ("u.csv", "u.jsonl", "u.parquet"):
        chunks, rejects = read_all(write(tmp_path / name, rows))
        assert rejects == [] and good_rows(chunks)[0][5] == 42


def test_defaults_unit_data_received_now_no_rating_group(tmp_path: Path) -> None:
    chunks, _ = read_all(write(tmp_path / "d.csv", [row(bytes="5")]), now_us=123)
    assert good_rows(chunks) == [(1, "e1", "L1", T0, 123, 5, 0, None)]


def test_units_any_case(tmp_path: Path) -> None:
    rows = [row(str(i), unit=u) for i, u in enumerate(["data", "Voice", " SMS ", ""])]
    chunks, _ = read_all(write(tmp_path / "u.csv", rows))
    assert [r[6] for r in good_rows(chunks)] == [0, 1, 2, 0]


@pytest.mark.parametrize("text", [
    "2026-01-10T12:00:00Z", "2026-01-10T12:00Z", "2026-01-10 12:00:00+00:00",
    "2026-01-10T14:00:00+02:00", "2026-01-10T14:00:00+0200", "2026-01-10T14:00+02",
    "2026-01-10T07:00:00-05:00", "2026-01-10T12:00:00.000000Z", "2026-01-10T12:00:00.0Z",
])
def test_instants_with_offsets(tmp_path: Path, text: str) -> None:
    chunks, rejects = read_all(write(tmp_path / "i.csv", [row(at=text)]),
                               default_tz="Asia/Tokyo")
    assert rejects == [] and good_rows(chunks)[0][3] == T0


def test_fractions_are_kept_to_the_microsecond_and_cut_below(tmp_path: Path) -> None:
    rows = [row("a", at="2026-01-10T12:00:00.5Z"), row("b", at="2026-01-10T12:00:00.123456Z"),
            row("c", at="2026-01-10T12:00:00.123456789Z")]
    chunks, _ = read_all(write(tmp_path / "f.csv", rows))
    assert [r[3] - T0 for r in good_rows(chunks)] == [500_000, 123_456, 123_456]


@pytest.mark.parametrize("wall", [
    "2026-01-10T07:00:00",  # winter: UTC-5
    "2026-07-01T12:00:00",  # summer: UTC-4
    "2026-03-08T02:30:00",  # in the spring-forward gap: zoneinfo fold 0 takes UTC-5
    "2026-11-01T01:30:00",  # twice in the autumn: fold 0 is the first (UTC-4)
    "2026-03-08T03:00:00",  # first instant after the gap
])
def test_wall_times_read_like_zoneinfo_fold_0(tmp_path: Path, wall: str) -> None:
    chunks, rejects = read_all(write(tmp_path / "w.csv", [row(at=wall)]),
                               default_tz="America/New_York")
    assert rejects == []
    assert good_rows(chunks)[0][3] == us(wall, "America/New_York")


def test_typed_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({
        "event_id": pa.array([1, 2, 3]),
        "line": pa.array([4915112345678, 4915112345678, 7]),
        "at": pa.array([T0, T0, None], pa.timestamp("us", "UTC")),
        "received_at": pa.array([datetime(2026, 1, 10, 8), None, None], pa.timestamp("ms")),
        "bytes": pa.array([10, -4, 5], pa.int64()),
    }), path)
    chunks, rejects = read_all(path, default_tz="America/New_York")
    assert good_rows(chunks) == [(1, "1", "4915112345678", T0, T0 + 3600 * 10**6, 10, 0, None)]
    assert [(r.row, r.reason) for r in rejects] == [(2, "bytes: negative '-4'"),
                                                    (3, "at: empty")]
    assert rejects[0].raw["bytes"] == "-4" and rejects[0].raw["event_id"] == "2"


def test_typed_json_values(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [{"event_id": 1, "line": 4915112345678, "at": "2026-01-10T12:00Z", "bytes": 5},
             {"event_id": "2", "line": "L", "at": "2026-01-10T12:00Z", "bytes": 5.0},
             {"event_id": "3", "line": "L", "at": "2026-01-10T12:00Z", "bytes": 5.5},
             {"event_id": "4", "line": "L", "at": "2026-01-10T12:00Z", "bytes": None},
             {"event_id": "5", "line": "L", "at": "2026-01-10T12:00Z"},
             {"event_id": "6", "line": "L", "at": "2026-01-10T12:00Z", "bytes": 10**20},
             {"event_id": "7", "line": "L", "at": "2026-01-10T12:00Z", "bytes": True}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    for chunk_rows in (1, 2, 100):
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [(r[1], r[2], r[5]) for r in good_rows(chunks)] == [
            ("1", "4915112345678", 5), ("2", "L", 5)]
        assert [(r.row, r.reason) for r in rejects] == [
            (3, "bytes: not an integer '5.5'"), (4, "bytes: empty"), (5, "bytes: empty"),
            (6, f"bytes: {TOO_LARGE} '100000000000000000000'"),
            (7, "bytes: not an integer 'true'")]
        assert rejects[1].raw == {"event_id": "4", "line": "L", "at": "2026-01-10T12:00Z"}


# --------------------------------------------------------------------------- rejects


# 2^50 is the bound of one event (docs/semantics.md, "Bounds").
TOO_LARGE = "too large (more than 2^50 = 1125899906842624, the largest event)"
BAD = [  # (row, expected reason)
    (row("e1", bytes="-5"), "bytes: negative '-5'"),
    (row("e2", bytes="1.5"), "bytes: not an integer '1.5'"),
    (row("e3", bytes="12abc"), "bytes: not an integer '12abc'"),
    (row("e4", bytes="1000000000000000000"),
     f"bytes: {TOO_LARGE} '1000000000000000000'"),
    (row("e4b", bytes=str(2**50 + 1)), f"bytes: {TOO_LARGE} '1125899906842625'"),
    (row("e5", bytes=""), "bytes: empty"),
    (row("e6", at="2026-02-30T00:00"), "at: not an ISO 8601 instant '2026-02-30T00:00'"),
    (row("e7", at="10/01/2026 12:00"), "at: not an ISO 8601 instant '10/01/2026 12:00'"),
    (row("e8", at="2026-01-10"), "at: not an ISO 8601 instant '2026-01-10'"),
    (row("e9", at="2026-01-10T24:00"), "at: not an ISO 8601 instant '2026-01-10T24:00'"),
    (row("e10", at=""), "at: empty"),
    (row("", ), "event_id: empty"),
    (row("e12", line="  "), "line: empty"),
    (row("e13", unit="mms"), "unit: not data, voice or sms 'mms'"),
    (row("e14", received_at="2026-01-10T11:59:59Z"),
     "received_at: before the event's instant '2026-01-10T11:59:59Z'"),
    (row("e15", received_at="yesterday"),
     "received_at: not an ISO 8601 instant 'yesterday'"),
    (row("", line="", bytes="-1"), "event_id: empty; line: empty; bytes: negative '-1'"),
]


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl", "r.parquet"])
@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_every_reject_reason_with_its_row(tmp_path: Path, name: str, chunk_rows: int) -> None:
    rows, expected = [], []
    for bad, reason in BAD:  # a good row between every two bad ones
        rows += [row(f"ok{len(rows)}"), bad]
        expected.append((len(rows), reason))
    rows.append(row("last"))
    chunks, rejects = read_all(write(tmp_path / name, rows, COLUMNS), chunk_rows=chunk_rows)
    assert [(r.row, r.reason) for r in rejects] == expected
    assert {r.file for r in rejects} == {str(tmp_path / name)}
    assert [r[0] for r in good_rows(chunks)] == list(range(1, 2 * len(BAD) + 2, 2))
    assert {k: rejects[0].raw[k] for k in BAD[0][0]} == BAD[0][0]


def test_end_before_start(tmp_path: Path) -> None:
    rows = [{"event_id": "a", "line": "L", "start": "2026-01-10T12:00Z",
             "end": "2026-01-10T11:00Z", "bytes": "1"}]
    _, rejects = read_all(write(tmp_path / "s.csv", rows))
    assert [(r.row, r.reason) for r in rejects] == [
        (1, "end: before start '2026-01-10T11:00Z'")]


def test_malformed_csv_rows_and_blank_lines_keep_row_numbers(tmp_path: Path) -> None:
    lines = ["event_id,line,at,bytes"]
    lines += [f"e{i},L,2026-01-10T12:00Z,{i}" for i in range(1, 40)]
    lines[5] = "only,two"           # data row 5
    lines[17] = ""                  # data row 17: blank, skipped silently
    lines[30] = "a,b,c,d,e"         # data row 30
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    for chunk_rows in (1, 4, 1000):
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [(r.row, r.reason) for r in rejects] == [
            (5, "2 fields, the header has 4"), (30, "5 fields, the header has 4")]
        assert rejects[0].raw == {"event_id": "only", "line": "two"}
        got = [r[0] for r in good_rows(chunks)]
        assert got == [i for i in range(1, 40) if i not in (5, 17, 30)]
        assert all(int(r[1][1:]) == r[0] for r in good_rows(chunks))  # e<n> sits on row n


def test_a_malformed_row_after_chunks_went_out(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Small parse blocks: chunks go out before the parser meets the bad row, so the
    # reader starts over on one thread and must skip exactly what it gave out.
    monkeypatch.setattr(cdr_formats, "_CSV_BLOCK", 1 << 12)
    lines = ["event_id,line,at,bytes"]
    lines += [f"e{i},L,2026-01-10T12:00Z,{i}" for i in range(1, 3001)]
    lines[2500] = "x,y"
    lines[2900] = "x,y,z,1,2"
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    for chunk_rows in (7, 1000):
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [r.row for r in rejects] == [2500, 2900]
        got = good_rows(chunks)
        assert [r[0] for r in got] == [i for i in range(1, 3001) if i not in (2500, 2900)]
        assert all(int(r[1][1:]) == r[0] for r in got)


def test_bad_json_lines_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    good = json.dumps(row())
    path.write_text(f"{good}\n\n{{not json\n[1, 2]\n{good}\r\n   \n{good}")
    for chunk_rows in (1, 2, 100):
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [r[0] for r in good_rows(chunks)] == [1, 5, 7]
        assert [(r.row, r.reason) for r in rejects] == [
            (3, "not a JSON object: '{not json'"), (4, "not a JSON object: '[1, 2]'"),
            (6, "not a JSON object: ''")]


def test_chunks_partition_the_file(tmp_path: Path) -> None:
    rows = [row(str(i), bytes="-1" if i % 5 == 0 else "1") for i in range(1, 24)]
    chunks, rejects = read_all(write(tmp_path / "p.csv", rows), chunk_rows=4)
    assert [c.first_row for c in chunks] == [1, 5, 9, 13, 17, 21]
    assert [len(c) for c in chunks] == [4, 3, 3, 3, 3, 3]
    assert [r.row for r in rejects] == [5, 10, 15, 20]
    assert all(c.first_row <= c.row.min() for c in chunks if len(c))


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "m.parquet"])
def test_missing_columns_reject_the_file_once(tmp_path: Path, name: str) -> None:
    rows = [{"event_id": str(i), "start_time": "2026-01-10T12:00Z", "volume": "1"}
            for i in range(50)]
    chunks, rejects = read_all(write(tmp_path / name, rows), chunk_rows=7)
    assert [len(c) for c in chunks] == [0]
    assert rejects == [Reject(str(tmp_path / name), 0,
                              "missing column line, at (or start/end), "
                              "bytes (or bytes_up + bytes_down)", {})]


def test_a_column_named_twice_rejects_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("event_id,line,at,bytes,line\ne,L,2026-01-10T12:00Z,1,M\n")
    chunks, rejects = read_all(path)
    assert [len(c) for c in chunks] == [0]
    assert [(r.row, r.reason) for r in rejects] == [(0, "column named twice: line")]


def test_bytes_up_without_bytes_down_is_a_missing_column(tmp_path: Path) -> None:
    rows = [{"event_id": "a", "line": "L", "at": "2026-01-10T12:00Z", "bytes_up": "1"}]
    _, rejects = read_all(write(tmp_path / "u.csv", rows))
    assert [r.reason for r in rejects] == ["missing column bytes (or bytes_up + bytes_down)"]


# --------------------------------------------------------------------------- rejects file


def test_write_rejects_as_csv(tmp_path: Path) -> None:
    rejects = [Reject("f.csv", 0, "missing column bytes", {}),
               Reject("g.csv", 4, "bytes: negative '-5'", {"event_id": "e", "bytes": "-5"}),
               Reject("g.csv", 9, "line: empty", {"event_id": "x", "line": "", "extra": "1"})]
    out = tmp_path / "rejects.csv"
    write_rejects(out, iter(rejects))
    with out.open(newline="") as f:
        # A file rejected whole (row 0) is no row to fix and feed back: not written.
        assert list(csv.reader(f)) == [
            ["file", "row", "reason", "event_id", "bytes"],
            ["g.csv", "4", "bytes: negative '-5'", "e", "-5"],
            ["g.csv", "9", "line: empty", "x", "", "line=", "extra=1"],
        ]


def test_json_rejects_carry_their_original_line(tmp_path: Path) -> None:
    lines = ['{"event_id": "a", "line": "L", "at": "2026-01-10T12:00Z", "bytes": 1}',
             '{"bytes": -1.0e0, "at": "2026-01-10T12:00Z", "line": "L", "event_id": "b",'
             ' "x": null, "ok": true}',
             '  {"event_id": "c", "line": "L", "at": "2026-01-10T12:00Z", "bytes": "2x"}  ',
             '{"event_id": "d", "line": "L", "at": "2026-01-10T12:00Z", "bytes": 2}',
             '{"event_id": "e", "line": "L", "at": "2026-01-10T12:00Z", "bytes": -3,'
             ' "cell": {"id": 7}}',
             '{cut', '']
    path = tmp_path / "o.jsonl"
    path.write_bytes("\r\n".join(lines).encode())  # CRLF: not part of the line
    for chunk_rows in (1, 2, 3, 100):  # Arrow's batches and `json`'s both
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [r.row for r in rejects] == [2, 3, 5, 6]
        assert [r.original for r in rejects] == [lines[1], lines[2], lines[4], lines[5]]
        assert rejects[0].raw == {"bytes": "-1", "at": "2026-01-10T12:00Z", "line": "L",
                                  "event_id": "b", "ok": "true"}  # cells as text, for CSV
        assert all(c.fields is None and c.lines is not None for c in chunks if len(c))
        # A good row refused later (an unknown line) is written from its line too.
        assert [c.originals(np.flatnonzero(c.row == 4).tolist()) for c in chunks
                if 4 in c.row] == [[({"event_id": "d", "line": "L", "at": "2026-01-10T12:00Z",
                                      "bytes": "2"}, lines[3])]]


def test_json_rejects_written_as_the_original_object(tmp_path: Path) -> None:
    rejects = [
        Reject("f.jsonl", 2, "bytes: negative", {}, '{"event_id": "b", "bytes": -1.50e0}'),
        Reject("f.jsonl", 3, "not a JSON object: '{cut'", {}, "{cut"),
        Reject("f.jsonl", 4, "not a JSON object: '[1]'", {}, "[1]"),
        # Fed back: its leading reason keys give way to the new ones, the rest kept as is.
        Reject("r.jsonl", 5, "line: empty", {},
               '{"file":"f.jsonl","row":9,"reason":"old", "event_id": "q",  "n": 1.0}'),
        # A reason key further on is no part of the row either.
        Reject("r.jsonl", 6, "line: empty", {}, '{"event_id": "q", "row": 1, "n": 1.0}'),
        Reject("g.jsonl", 7, "not a JSON object: '\\udcff'", {}, "{\udcff"),
        Reject("g.csv", 8, "line: empty", {"event_id": "c", "line": ""}),
    ]
    out = tmp_path / "rejects.jsonl"
    write_rejects(out, rejects)
    assert out.read_text(encoding="utf-8").splitlines() == [
        '{"file": "f.jsonl", "row": 2, "reason": "bytes: negative", "event_id": "b", '
        '"bytes": -1.50e0}',
        '{"file": "f.jsonl", "row": 3, "reason": "not a JSON object: \'{cut\'", '
        '"original_line": "{cut"}',
        '{"file": "f.jsonl", "row": 4, "reason": "not a JSON object: \'[1]\'", '
        '"original_line": "[1]"}',
        '{"file": "r.jsonl", "row": 5, "reason": "line: empty", "event_id": "q",  "n": 1.0}',
        '{"file": "r.jsonl", "row": 6, "reason": "line: empty", "event_id": "q", "n": 1.0}',
        '{"file": "g.jsonl", "row": 7, "reason": "not a JSON object: \'\\\\udcff\'", '
        '"original_line": "{\\udcff"}',  # not UTF-8: escaped, so it encodes back the same
        '{"file": "g.csv", "row": 8, "reason": "line: empty", "event_id": "c", "line": ""}']
    as_csv = tmp_path / "rejects.csv"
    write_rejects(as_csv, [*rejects[1:2], Reject("f.jsonl", 9, "x", {"event_id": "z"}, "{}")])
    with as_csv.open(newline="") as f:
        assert list(csv.reader(f)) == [["file", "row", "reason", "event_id"],
                                       ["f.jsonl", "3", "not a JSON object: '{cut'", "",
                                        "original_line={cut"],
                                       ["f.jsonl", "9", "x", "z"]]


def test_a_wrapped_original_line_is_read_as_the_line_it_wraps(tmp_path: Path) -> None:
    fixed = json.dumps(row("w1", bytes=5))
    path = tmp_path / "back.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in [
        {"file": "f.jsonl", "row": 3, "reason": "not a JSON object", "original_line": "{cut"},
        {"file": "f.jsonl", "row": 4, "reason": "not a JSON object", "original_line": fixed},
        {"original_line": "[1]"},  # the reason keys may go
        {"file": "f", "row": 1, "reason": "r", "original_line": "{x", "event_id": "k"},
        row("w2")]))
    for chunk_rows in (1, 2, 100):
        chunks, rejects = read_all(path, chunk_rows=chunk_rows)
        assert [r[:2] for r in good_rows(chunks)] == [(2, "w1"), (5, "w2")]
        assert [(r.row, r.reason, r.original) for r in rejects] == [
            (1, "not a JSON object: '{cut'", "{cut"), (3, "not a JSON object: '[1]'", "[1]"),
            (4, "line: empty; at: empty; bytes: empty",  # another key: an ordinary row
             json.dumps({"file": "f", "row": 1, "reason": "r", "original_line": "{x",
                         "event_id": "k"}))]


def test_reject_writer_appends_chunk_by_chunk(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", [row(str(i), bytes=str(i % 3 - 1)) for i in range(9)])
    out = tmp_path / "rejects.csv"
    with RejectWriter(out) as writer:
        for _, rejects in read_usage(path, now_us=NOW, chunk_rows=2):
            writer.write(rejects)
    with out.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["row"], r["bytes"]) for r in table] == [("1", "-1"), ("4", "-1"), ("7", "-1")]
    empty = tmp_path / "none.csv"
    write_rejects(empty, [])
    assert empty.read_text().strip() == "file,row,reason"


def test_stopping_early_ends_the_reading_threads(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", [row(str(i)) for i in range(100)])
    before = threading.active_count()
    reader = read_usage(path, now_us=NOW, chunk_rows=3)
    next(reader)
    reader.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


# --------------------------------------------------------------------------- properties

ID = st.sampled_from(["e1", "e2", " e3 ", "", "ü-7", 'q"x', "a,b", "two\nlines"])
INSTANT = st.sampled_from([
    "2026-01-10T12:00:00Z", "2026-01-10T12:00", "2026-01-10 12:00:00.25+01:00",
    "2026-03-08T02:30:00", "2026-11-01T01:30", "2024-02-29T00:00:00-05:00", "2026-02-29T00:00",
    "2026-01-10", "12:00", "", " 2026-01-10T12:00:00.1234567Z ", "2026-01-10T12:00:00+0530"])
COUNT = st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(
    ["", "-3", "1.5", "007", "1e3", "999999999999999999", "1000000000000000000", " 8 "]))
UNIT = st.sampled_from(["", "data", "VOICE", "sms", "mms"])
GROUP = st.sampled_from(["", "hotspot", " x "])
RECEIVED = st.one_of(INSTANT, st.just("2030-01-01T00:00:00Z"))
ROW = st.fixed_dictionaries({"event_id": ID, "line": ID, "at": INSTANT, "bytes": COUNT,
                             "unit": UNIT, "rating_group": GROUP, "received_at": RECEIVED})


def outcome(path: Path, chunk_rows: int) -> tuple[list[tuple], list[tuple]]:
    chunks, rejects = read_all(path, chunk_rows=chunk_rows, default_tz="America/New_York")
    return good_rows(chunks), [(r.row, r.reason, r.raw) for r in rejects]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), chunk_rows=st.integers(1, 8))
def test_same_rows_and_rejects_whatever_the_format_and_chunk_size(
        tmp_path: Path, rows: list[dict[str, str]], chunk_rows: int) -> None:
    results = []
    for name in ("p.csv", "p.jsonl", "p.parquet"):
        path = write(tmp_path / name, rows, COLUMNS)
        whole = outcome(path, 1000)
        assert outcome(path, chunk_rows) == whole
        results.append(whole)
    assert results[0] == results[1] == results[2]
    good, bad = results[0]
    blank = sum(all(not v.strip() for v in r.values()) for r in rows)
    assert len(good) + len(bad) + blank == len(rows)


JSON_VALUE = st.one_of(COUNT, st.integers(-5, 10**19), st.floats(allow_nan=False),
                       st.none(), st.booleans())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(
    {"event_id": st.one_of(ID, st.integers(0, 9)), "line": ID, "at": INSTANT,
     "bytes": JSON_VALUE}), max_size=20), chunk_rows=st.integers(1, 6))
def test_typed_json_gives_the_same_whatever_the_chunk_size(
        tmp_path: Path, rows: list[dict[str, Any]], chunk_rows: int) -> None:
    # Batches Arrow parses and batches that fall back to `json` must agree.
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert outcome(path, chunk_rows) == outcome(path, 1000)


# --------------------------------------------------------------------------- memory

_MEMORY_PROBE = """
import resource, sys
from carryover.adapters.cdr_files import read_usage
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
good = bad = 0
for chunk, rejects in read_usage(sys.argv[1], now_us=0):
    good, bad = good + len(chunk), bad + len(rejects)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(good, bad, (after - before) // 1024)
"""


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_file(tmp_path: Path) -> None:
    n = 2_000_000
    path = tmp_path / "big.csv"
    ids = np.arange(n)
    at = pa.array(T0 + (ids % (31 * 86400)) * 10**6, pa.timestamp("us")).cast(pa.string())
    table = pa.table({"event_id": pa.array(ids).cast(pa.string()),
                      "line": pa.array(ids % 100_000).cast(pa.string()),
                      "at": at, "bytes": pa.array(ids % 50_000_000)})
    pcsv.write_csv(table, path)
    del table, at, ids
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path)], check=True,
                          capture_output=True, text=True, timeout=120)
    good, bad, growth_mb = map(int, done.stdout.split())
    assert (good, bad) == (n, 0)
    assert growth_mb < 400, f"peak RSS grew by {growth_mb} MB reading {n} rows"
