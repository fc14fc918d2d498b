"""`carryover line import` and `carryover ingest` as an operator runs them."""

from __future__ import annotations

import csv
import gzip
import json

from typer.testing import CliRunner

from carryover.cli import app

GB = 1024**3
MB = 1024**2
runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_import_lines_then_ingest_with_rejects_and_duplicates(tmp_path):
    lines = tmp_path / "lines.csv"
    with lines.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["msisdn", "imsi", "account", "plan", "start"])
        out.writerow(["+4917000001", "262010000000001", "acme", "tmobile-data-stash-10gb",
                      "2026-01-01T00:00"])
        out.writerow(["+4917000002", "", "acme", "travel-5gb-30d", "2026-01-01T00:00"])
        out.writerow(["12ab", "", "acme", "tmobile-go5g", "2026-01-01T00:00"])  # row 3
        out.writerow(["+4917000004", "", "zeta", "no-such-plan", ""])  # row 4
    imported = json.loads(cli("line", "import", str(lines), "--timezone", "Europe/Berlin",
                              "--json", code=2))  # rows were rejected
    assert (imported["imported"], imported["rejected"]) == (2, 2)
    assert [r["row"] for r in imported["rejects"]] == [3, 4]

    usage = tmp_path / "cdr.jsonl.gz"
    rows = [
        {"event_id": "a", "line": "+4917000001", "at": "2026-01-10T10:00:00+01:00",
         "bytes": 3 * GB, "received_at": "2026-01-10T10:05:00+01:00"},
        {"event_id": "b", "line": "262010000000001", "at": "2026-01-11T10:00:00Z",
         "bytes": 1 * GB, "received_at": "2026-01-11T10:01:00Z"},
        {"event_id": "a", "line": "+4917000001", "at": "2026-01-10T10:00:00+01:00",
         "bytes": 3 * GB, "received_at": "2026-01-10T10:05:00+01:00"},  # duplicate of row 1
        {"event_id": "c", "line": "+4917999999", "at": "2026-01-12T00:00:00Z", "bytes": 1},
        {"event_id": "d", "line": "+4917000002", "at": "2026-01-12T00:00:00Z", "bytes": -1},
        # Late: January usage reported in March, long after the grace window.
        {"event_id": "e", "line": "+4917000002", "at": "2026-01-20T00:00:00Z",
         "bytes": 1 * GB, "received_at": "2026-03-01T00:00:00Z"},
    ]
    with gzip.open(usage, "wt") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    rejects = tmp_path / "rejects.csv"
    # Rows were rejected: exit 2 (docs/ingest.md, "Exit status").
    summary = json.loads(cli("ingest", str(usage), "--rejects", str(rejects), "--json", code=2))
    assert {k: summary[k] for k in ("rows", "accepted", "duplicates", "late", "rejected")} == {
        "rows": 6, "accepted": 3, "duplicates": 1, "late": 1, "rejected": 2}
    with rejects.open() as handle:
        bad = {int(r["row"]): r["reason"] for r in csv.DictReader(handle)}
    assert set(bad) == {4, 5}
    assert "unknown line" in bad[4] and "negative" in bad[5]

    # A packet core that reports sessions: start/end and bytes up + down, as CSV.
    sessions = tmp_path / "sessions.csv"
    sessions.write_text("event_id,line,start,end,bytes_up,bytes_down,received_at\n"
                        "s1,+4917000001,2026-01-12T09:00:00Z,2026-01-12T10:00:00Z,"
                        f"{100 * MB},{924 * MB},2026-01-12T10:01:00Z\n")
    assert json.loads(cli("ingest", str(sessions), "--json"))["accepted"] == 1
    # 10 GB - 3 GB (a) - 1 GB (b) - 1 GB (s1: 100 MB up + 924 MB down) = 5 GB left.
    view = json.loads(cli("balance", "+4917000001", "--at", "2026-01-15T00:00", "--json"))
    assert view["available"] == {"data": 5 * GB}
    # The late 1 GB was rated at its arrival (1 March), when the 30-day pack had expired.
    travel = json.loads(cli("balance", "+4917000002", "--at", "2026-03-02T00:00", "--json"))
    assert travel["cycle"]["overage"] == {"data": 1 * GB}
    again = json.loads(cli("ingest", str(usage), "--json", "--allow-rejects"))
    assert (again["accepted"], again["duplicates"]) == (0, 4)


def test_a_file_missing_a_column_is_rejected_as_a_whole(tmp_path):
    cli("init")
    usage = tmp_path / "cdr.csv"
    usage.write_text("event_id,at,bytes\nx,2026-01-01T00:00:00Z,5\n")
    result = runner.invoke(app, ["ingest", str(usage), "--json", "--allow-rejects"])
    assert result.exit_code == 2  # a file rejected whole: --allow-rejects does not cover it
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"], summary["files_rejected"]) == (0, 0, 1)
    assert result.stderr == (f"carryover: {usage}: missing column line (file rejected whole, "
                             "nothing of it ingested)\n")


def test_a_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no such file" in result.output
