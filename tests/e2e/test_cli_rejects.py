"""Rejects files that are fixed and fed back as they are, and the exit status scripts read.

A rejects file holds the reason columns, then each rejected row exactly as the file
had it, in file order, whichever step refused it (the checks, or the ingest: an
unknown line, usage before the line started). Fixing a cell and feeding the file
back ingests those rows, and nothing is counted twice (docs/ingest.md).
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from carryover.cli import app

runner = CliRunner()
HEADER = ["Event_ID", "LINE", "At", "bytes", "note"]  # any case; an extra column kept
ROWS = [
    ["e1", "+491720000001", "2026-01-05T10:00:00Z", "100", "ok"],
    ["e2", "+491729999999", "2026-01-05T11:00:00Z", "200", "unknown line"],   # ingest step
    ["e3", "+491720000001", "2026-01-05T12:00:00Z", "-5", "negative, quoted \"x\""],
    ["e4", "+491720000002", "2025-12-01T00:00:00Z", "400", "before the line started"],
    ["e5", "+491720000002", "2026-01-06T10:00:00Z", "500", "ok"],
    ["e6", "+491720000001", "2026-01-06T25:00:00Z", "600", "bad instant, with a comma"],
]
FIXED = {"2": (1, "+491720000001"), "3": (3, "5"), "4": (2, "2026-01-02T00:00:00Z"),
         "6": (2, "2026-01-06T23:00:00Z")}  # row: (field of the original row, new text)


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def _lines(tmp_path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("MSISDN,imsi,Account,plan,start\n"  # headers in any case
                    "+491720000001,,a1,tmobile-data-stash-10gb,2026-01-01T00:00Z\n"
                    "+491720000002,,a2,tmobile-data-stash-10gb,2026-01-01T00:00Z\n")
    cli("line", "import", str(path))


def _stored(tmp_path) -> tuple[int, int]:
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        return conn.execute("SELECT count(*), sum(amount) FROM usage_events").fetchone()


def test_csv_rejects_are_the_original_rows_in_file_order_and_feed_back(tmp_path):
    _lines(tmp_path)
    usage = tmp_path / "cdr.csv"
    with usage.open("w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *ROWS])
    rejects = tmp_path / "rejects.csv"
    first = json.loads(cli("ingest", str(usage), "--rejects", str(rejects), "--json",
                           code=2).stdout)
    assert (first["accepted"], first["rejected"]) == (2, 4)
    with rejects.open(newline="") as handle:
        got = list(csv.reader(handle))
    assert got[0] == ["file", "row", "reason", *HEADER]
    assert [r[1] for r in got[1:]] == ["2", "3", "4", "6"]  # file order, both steps mixed
    for r in got[1:]:
        assert r[0] == str(usage)
        assert r[3:] == ROWS[int(r[1]) - 1]  # the original row, exactly
    reasons = {r[1]: r[2] for r in got[1:]}
    assert "unknown line" in reasons["2"] and "negative" in reasons["3"]
    assert "before the line started" in reasons["4"] and "ISO 8601" in reasons["6"]

    # The simple edit: one cell per row, nothing else touched.
    for r in got[1:]:
        field, text = FIXED[r[1]]
        r[3 + field] = text
    with rejects.open("w", newline="") as handle:
        csv.writer(handle).writerows(got)
    again = json.loads(cli("ingest", str(rejects), "--json").stdout)  # exit 0
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (4, 0, 0)
    assert _stored(tmp_path) == (6, 100 + 200 + 5 + 400 + 500 + 600)
    # Fed back once more, and the original file too: all duplicates, nothing twice.
    assert json.loads(cli("ingest", str(rejects), "--json").stdout)["duplicates"] == 4
    assert _stored(tmp_path) == (6, 1805)


def test_jsonl_rejects_keep_the_original_object_and_feed_back(tmp_path):
    _lines(tmp_path)
    usage = tmp_path / "cdr.jsonl.gz"
    objects = [dict(zip(HEADER, row, strict=True)) for row in ROWS]
    with gzip.open(usage, "wt") as handle:
        for obj in objects:
            handle.write(json.dumps(obj) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    cli("ingest", str(usage), "--rejects", str(rejects), code=2)
    got = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [g["row"] for g in got] == [2, 3, 4, 6]
    for g in got:
        assert list(g)[:3] == ["file", "row", "reason"]
        assert {k: v for k, v in g.items() if k not in ("file", "row", "reason")} == \
            objects[g["row"] - 1]
    with rejects.open("w") as handle:
        for g in got:
            field, text = FIXED[str(g["row"])]
            g[HEADER[field]] = text
            handle.write(json.dumps(g) + "\n")
    again = json.loads(cli("ingest", str(rejects), "--json").stdout)
    assert (again["accepted"], again["rejected"]) == (4, 0)
    assert _stored(tmp_path) == (6, 1805)


def test_line_import_rejects_carry_the_fields_and_import_again(tmp_path):
    lines = tmp_path / "lines.csv"
    header = ["msisdn", "IMSI", "account", "plan", "start"]
    rows = [["+491730000001", "", "acme", "tmobile-go5g", "2026-01-01T00:00"],
            ["+491730000002", "", "acme", "no-such-plan", "2026-01-01T00:00"],
            ["12ab", "", "zeta", "tmobile-go5g", "2026-01-01T00:00"],
            ["+491730000004", "", "zeta", "tmobile-go5g", "yesterday"]]
    with lines.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    rejects = tmp_path / "bad-lines.csv"
    first = json.loads(cli("line", "import", str(lines), "--rejects", str(rejects), "--json",
                           code=2).stdout)
    assert (first["imported"], first["rejected"]) == (1, 3)
    with rejects.open(newline="") as handle:
        got = list(csv.reader(handle))
    assert got[0] == ["file", "row", "reason", *header]
    assert [r[1] for r in got[1:]] == ["2", "3", "4"]
    assert [r[3:] for r in got[1:]] == rows[1:]
    got[1][6], got[2][3], got[3][7] = "tmobile-go5g", "+491730000003", "2026-01-01T00:00"
    with rejects.open("w", newline="") as handle:
        csv.writer(handle).writerows(got)
    again = json.loads(cli("line", "import", str(rejects), "--json").stdout)
    assert (again["imported"], again["rejected"]) == (3, 0)
    assert cli("line", "import", str(rejects), "--json", "--allow-rejects").exit_code == 0


def test_exit_status_rows_rejected_and_allow_rejects(tmp_path):
    _lines(tmp_path)
    usage = tmp_path / "cdr.csv"
    usage.write_text("event_id,line,at,bytes\n"
                     "x1,+491720000001,2026-01-05T10:00:00Z,1\n"
                     "x2,+491720000001,2026-01-05T10:00:00Z,-1\n")
    cli("ingest", str(usage), code=2)
    cli("ingest", str(usage), "--allow-rejects")  # only rows rejected: 0
    good = tmp_path / "good.csv"
    good.write_text("event_id,line,at,bytes\nx1,+491720000001,2026-01-05T10:00:00Z,1\n")
    cli("ingest", str(good))  # accepted or duplicate: 0


def test_a_gz_that_is_not_gzip_is_refused(tmp_path):
    fake = tmp_path / "cdr.csv.gz"
    fake.write_text("event_id,line,at,bytes\nx,+491720000001,2026-01-05T10:00:00Z,1\n")
    result = cli("ingest", str(fake), code=2)
    assert result.stderr.splitlines()[0] == (
        f"carryover: {fake}: the name ends in .gz but the file is not gzip")


def test_an_empty_file_says_so(tmp_path):
    for name, text in (("empty.csv", ""), ("header.csv", "event_id,line,at,bytes\n"),
                       ("empty.jsonl", "")):
        path = tmp_path / name
        path.write_text(text)
        result = cli("ingest", str(path), "--json")
        assert json.loads(result.stdout)["rows"] == 0
        assert result.stderr == f"carryover: {path}: empty: no rows to ingest\n"
    lines = tmp_path / "lines.csv"
    lines.write_text("")
    result = cli("line", "import", str(lines))
    assert result.stderr == f"carryover: {lines}: empty: no lines to import\n"


# Typed values, nested ones, keys in any order, a line cut short and a line that is JSON
# but not an object: each reject must be the original line, not its cells as text.
JSONL_SOURCE = [
    '{"event_id": "j1", "line": "+491720000001", "at": "2026-01-05T10:00:00Z", "bytes": 100,'
    ' "score": 1.5, "ok": true, "rating_group": null}',
    '{"bytes":200,"line":"+491729999999","event_id":"j2","at":"2026-01-05T11:00:00Z",'
    '"tags":["a",2,null],"cell":{"id":7,"lac":null,"ok":false}}',  # unknown line: ingest step
    '{"event_id": "j3", "line": "+491720000001", "at": "2026-01-05T12:00:00Z", "bytes": -5,'
    ' "ratio": 0.25, "big": 12345678901234567890, "note": "négatif \\"x\\""}',
    '{"event_id": "j4", "line": "+491720000001", "at": "2026-01-05T13:00:00Z", "bytes": 4',
    '{"at": "2025-12-01T00:00:00Z", "event_id": "j5", "line": "+491720000002", "bytes": 500,'
    ' "unit": null, "flag": false}',  # before the line started: ingest step
    '{"event_id": "j6", "line": "+491720000002", "at": "2026-01-06T25:00:00Z", "bytes": 600,'
    ' "score": 2.50}',  # a bad instant: the checks
    '[7, "j7"]',
    '{"event_id": "j8", "line": "+491720000002", "at": "2026-01-07T10:00:00Z", "bytes": 800}',
]
J7 = {"event_id": "j7", "line": "+491720000002", "at": "2026-01-07T09:00:00Z", "bytes": 7}
JSONL_FIXES = {2: ("line", "+491720000001"), 3: ("bytes", 5), 5: ("at", "2026-01-02T00:00:00Z"),
               6: ("at", "2026-01-06T23:00:00Z")}
REASON_KEYS = ["file", "row", "reason"]


@pytest.mark.parametrize("chunk_rows", ["200000", "2"])  # 2: Arrow's batch path for rows 5-6
def test_jsonl_rejects_are_the_original_lines_with_their_json_types(tmp_path, chunk_rows):
    _lines(tmp_path)
    usage = tmp_path / "cdr.jsonl"
    usage.write_text("".join(line + "\n" for line in JSONL_SOURCE), encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    first = json.loads(cli("ingest", str(usage), "--rejects", str(rejects), "--json",
                           "--chunk-rows", chunk_rows, code=2).stdout)
    assert (first["accepted"], first["rejected"]) == (2, 6)
    written = rejects.read_text(encoding="utf-8").splitlines()
    got = [json.loads(line) for line in written]
    assert [g["row"] for g in got] == [2, 3, 4, 5, 6, 7]  # file order, both steps mixed
    for text, g in zip(written, got, strict=True):
        source = JSONL_SOURCE[g["row"] - 1]
        assert list(g)[:3] == REASON_KEYS and g["file"] == str(usage)
        rest = {k: v for k, v in g.items() if k not in REASON_KEYS}
        if g["row"] in (4, 7):  # not a JSON object: its text, whole
            assert rest == {"original_line": source}
            assert "not a JSON object" in g["reason"]
            continue
        original = json.loads(source)
        assert rest == original and list(rest) == list(original)  # types and key order
        assert text.endswith(", " + source[1:])  # the original object's text as it was
    assert got[1]["big"] == 12345678901234567890 and got[0]["cell"]["ok"] is False
    assert "unknown line" in got[0]["reason"] and "negative" in got[1]["reason"]
    assert "before the line started" in got[3]["reason"] and "ISO 8601" in got[4]["reason"]

    # Fed back unfixed: the same rows rejected again, the same originals (not nested).
    again = tmp_path / "again.jsonl"
    cli("ingest", str(rejects), "--rejects", str(again), code=2)
    assert [{k: v for k, v in json.loads(line).items() if k not in REASON_KEYS}
            for line in again.read_text(encoding="utf-8").splitlines()] == \
        [{k: v for k, v in g.items() if k not in REASON_KEYS} for g in got]

    # Fixed (a value in place; the cut line's text completed; the array replaced by the
    # object it should have been) and fed back: every row ingested, nothing twice.
    for g in got:
        if g["row"] in JSONL_FIXES:
            key, value = JSONL_FIXES[g["row"]]
            g[key] = value
    got[2]["original_line"] += "}"
    got[5]["original_line"] = json.dumps(J7)
    rejects.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in got),
                       encoding="utf-8")
    fed = json.loads(cli("ingest", str(rejects), "--json").stdout)  # exit 0
    assert (fed["accepted"], fed["duplicates"], fed["rejected"]) == (6, 0, 0)
    assert _stored(tmp_path) == (8, 100 + 200 + 5 + 4 + 500 + 600 + 7 + 800)


def test_line_import_rejects_keep_short_and_long_rows_as_they_were(tmp_path):
    lines = tmp_path / "lines.csv"
    rows = [["+491730000005", "", "acme", "no-such-plan"],  # short: no start
            ["+491730000006", "", "acme", "no-such-plan", "2026-01-01T00:00", "a note"]]
    with lines.open("w", newline="") as handle:
        csv.writer(handle).writerows([["msisdn", "imsi", "account", "plan", "start"], *rows])
    rejects = tmp_path / "bad-lines.csv"
    cli("line", "import", str(lines), "--rejects", str(rejects), code=2)
    with rejects.open(newline="") as handle:
        got = list(csv.reader(handle))
    assert [r[3:] for r in got[1:]] == rows  # neither padded nor cut
