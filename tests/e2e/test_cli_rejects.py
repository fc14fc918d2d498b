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
