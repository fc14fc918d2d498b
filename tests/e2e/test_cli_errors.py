"""The CLI's error boundary (cli.failures): one line `carryover: <what>: <why>` and exit 2 for
what the user or the machine causes, one line and exit 1 (CARRYOVER_DEBUG=1: the
traceback) for a defect; never a traceback otherwise, never a password; an ingest
that fails says what it had stored, and leaves no thread behind."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carryover.cli import app
from carryover.store.engine import dispose_engines

runner = CliRunner()
PASSWORD = "pw-n0t-2-be-sh0wn"


def run(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def one_line(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("carryover: ")
    return lines[0]


def test_plan_file_not_utf8_names_the_file(tmp_path):
    plan = tmp_path / "latin1.yaml"
    plan.write_bytes("id: caf\xe9\nkind: metered\n".encode("latin-1"))
    for args in (("plan", "load", str(plan)), ("simulate", str(plan))):
        result = run(*args)
        assert result.exit_code == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"{plan}: not UTF-8 text (byte 0xe9" in result.stderr


def test_database_directory_missing(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'c.db'}"
    line = one_line(run("plan", "list", env={"CARRYOVER_DATABASE_URL": url}))
    assert line == (f"carryover: database {url}: cannot open it: the directory "
                    f"{tmp_path / 'no' / 'such' / 'dir'} does not exist")


def test_postgresql_refusing_shows_no_password():
    # A loopback port nothing listens on (bound, never listened: the kernel refuses).
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        url = f"postgresql://carry:{PASSWORD}@127.0.0.1:{port}/carryover"
        line = one_line(run("plan", "list", env={"CARRYOVER_DATABASE_URL": url}))
    assert PASSWORD not in line
    assert line.startswith(f"carryover: database postgresql://carry:***@127.0.0.1:{port}"
                           "/carryover: ")
    assert "refused" in line.lower()


def test_an_unexpected_error_is_one_line_and_exit_1(monkeypatch):
    from carryover.cli import common

    def broken(self):
        raise KeyError(f"postgresql://u:{PASSWORD}@h/db")

    monkeypatch.setattr(common.Carryover, "open", broken)
    line = one_line(run("plan", "list"), code=1)
    assert line.startswith("carryover: unexpected error: KeyError: ")
    assert line.endswith("(set CARRYOVER_DEBUG=1 to see the traceback)")
    assert PASSWORD not in line
    debug = run("plan", "list", env={"CARRYOVER_DEBUG": "1"})
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "in broken" in debug.stderr


# --- ingest faults: what is stored is said, nothing outlives the run ---

def _lines(tmp_path: Path, n: int = 20) -> None:
    path = tmp_path / "lines.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["msisdn", "imsi", "account", "plan", "start"])
        for i in range(n):
            out.writerow([f"+4917100{i:04d}", "", f"acct{i}", "tmobile-data-stash-10gb",
                          "2026-01-01T00:00Z"])
    result = run("line", "import", str(path), "--json")
    assert result.exit_code == 0, result.stderr


def _usage_gz(path: Path, rows: int, lines: int = 20) -> Path:
    with gzip.open(path, "wt") as handle:
        handle.write("event_id,line,at,bytes\n")
        for i in range(rows):
            handle.write(f"ev{i:07d},+4917100{i % lines:04d},2026-01-{1 + i % 27:02d}T"
                         f"{i % 24:02d}:00:00Z,{1000 + i}\n")
    return path


def _stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]


def _stored_summary(stderr: str) -> dict:
    line = next(x for x in stderr.splitlines() if x.startswith("carryover: stored before"))
    found = re.match(r"carryover: stored before it stopped: ([\d,]+) chunk\(s\), ([\d,]+) rows "
                     r"\(([\d,]+) accepted, ([\d,]+) duplicates, ([\d,]+) rejected\); the last "
                     r"committed chunk was (.+); the rows after it are not stored", line)
    assert found, line
    chunks, rows, accepted, duplicates, rejected = (int(g.replace(",", ""))
                                                    for g in found.groups()[:5])
    return {"chunks": chunks, "rows": rows, "accepted": accepted, "duplicates": duplicates,
            "rejected": rejected, "last": found.group(6)}


def test_truncated_gzip_says_what_was_stored(tmp_path):
    db = tmp_path / "cli.db"
    _lines(tmp_path)
    # JSON Lines: read in order, so the chunks before the cut are ingested first.
    whole = tmp_path / "whole.jsonl.gz"
    with gzip.open(whole, "wt") as handle:
        for i in range(100_000):
            handle.write(json.dumps({"event_id": f"ev{i:07d}", "line": f"+4917100{i % 20:04d}",
                                     "at": f"2026-01-{1 + i % 27:02d}T{i % 24:02d}:00:00Z",
                                     "bytes": 1000 + i}) + "\n")
    cut = tmp_path / "cut.jsonl.gz"
    data = whole.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.6)])
    before = {t.name for t in threading.enumerate()}
    result = run("ingest", str(cut), "--chunk-rows", "10000")
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"carryover: {cut}: ")
    told = _stored_summary(result.stderr)
    stored = _stored(db)
    assert told["accepted"] == told["rows"] == stored > 0
    assert told["chunks"] == stored // 10_000
    assert told["last"] == f"{cut} rows {stored - 9_999:,}-{stored:,}"
    # Neither the read-ahead nor the checkpoint thread is left running; any other
    # (Rich's refresh thread, told to stop) ends by itself within moments.
    assert not [t for t in threading.enumerate() if t.name in ("wal-checkpoints",
                                                              "cdr-read-ahead")]
    for t in threading.enumerate():
        if t.name not in before:
            t.join(timeout=2)
    assert {t.name for t in threading.enumerate() if t.is_alive()} == before


def _mount(kind: list[str], target: Path) -> None:
    if not target.exists():
        target.mkdir()
    done = subprocess.run(["mount", *kind, str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 4 MiB (root only), unmounted afterwards."""
    target = tmp_path / "small"
    _mount(["-t", "tmpfs", "-o", "size=4m", "tmpfs"], target)
    yield target
    dispose_engines()
    subprocess.run(["umount", "-l", str(target)], check=True)


def _cli(env_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CARRYOVER_DATABASE_URL": env_url}
    env.pop("CARRYOVER_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "carryover.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_disk_full_is_one_line_exit_2_and_the_stored_summary(tmp_path, small_disk):
    db = small_disk / "full.db"
    url = f"sqlite:///{db}"
    lines = tmp_path / "lines.csv"
    with lines.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["msisdn", "imsi", "account", "plan", "start"])
        for i in range(20):
            out.writerow([f"+4917100{i:04d}", "", f"acct{i}", "tmobile-data-stash-10gb",
                          "2026-01-01T00:00Z"])
    assert run("line", "import", str(lines), env={"CARRYOVER_DATABASE_URL": url}).exit_code == 0
    usage = _usage_gz(tmp_path / "big.csv.gz", 60_000)
    stored = 0
    for attempt in range(3):  # the SIGABRT came on a third try
        if attempt == 0:  # a process of its own: its exit status is not a signal's
            done = _cli(url, "ingest", str(usage), "--chunk-rows", "5000", cwd=tmp_path)
            code, stderr = done.returncode, done.stderr
        else:
            dispose_engines()
            done = run("ingest", str(usage), "--chunk-rows", "5000",
                       env={"CARRYOVER_DATABASE_URL": url})
            code, stderr = done.exit_code, done.stderr
        assert code == 2, stderr  # not -6 (SIGABRT), not 1
        assert "Traceback" not in stderr
        lines_out = stderr.splitlines()
        assert len(lines_out) == 2
        assert lines_out[0] == (f"carryover: database {url}: the disk is full "
                                "(SQLite: database or disk is full)")
        told = _stored_summary(stderr)
        # What this run says it stored is what it added; the rest of its rows were
        # already there (duplicates).
        assert told["accepted"] + told["duplicates"] == told["rows"]
        assert _stored(db) == stored + told["accepted"] < 60_000
        stored = _stored(db)
        assert not [t for t in threading.enumerate() if t.name in ("wal-checkpoints",
                                                                  "cdr-read-ahead")]
    assert stored > 0


def test_read_only_database_is_one_line(tmp_path):
    db = tmp_path / "ro.db"
    url = f"sqlite:///{db}"
    assert run("init", env={"CARRYOVER_DATABASE_URL": url}).exit_code == 0
    dispose_engines()  # no connection opened before the file turns read-only
    _mount(["--bind", str(db)], db)
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(db)],
                                 capture_output=True)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        lines = tmp_path / "lines.csv"
        lines.write_text("msisdn,imsi,account,plan,start\n"
                         "+491710000001,,a,tmobile-data-stash-10gb,2026-01-01T00:00Z\n")
        line = one_line(run("line", "import", str(lines),
                            env={"CARRYOVER_DATABASE_URL": url}))
        assert line == (f"carryover: database {url}: it is read-only: carryover needs to "
                        "write the database file and its directory (for the -wal and -shm "
                        "files)")
        listed = run("plan", "list", "--json", env={"CARRYOVER_DATABASE_URL": url})
        assert listed.exit_code == 0 and json.loads(listed.stdout)  # reading still works
    finally:
        dispose_engines()  # its pooled connections hold the file open
        subprocess.run(["umount", "-l", str(db)], check=True)


def test_a_refused_url_never_shows_its_password():
    for url in (f"mysql://carry:{PASSWORD}@127.0.0.1/x",
                f"postgresql+asyncpg://carry:{PASSWORD}@127.0.0.1/x",
                f"postgresql://carry@127.0.0.1:1/x?password={PASSWORD}"):
        result = run("plan", "list", env={"CARRYOVER_DATABASE_URL": url})
        assert result.exit_code == 2, result.stderr
        assert result.stderr and PASSWORD not in result.stderr + result.stdout, result.stderr


def test_an_interrupted_ingest_says_what_was_stored(tmp_path, monkeypatch):
    from carryover.services.ingest import chunks as ingest

    db = tmp_path / "cli.db"
    _lines(tmp_path)
    usage = _usage_gz(tmp_path / "u.csv.gz", 3_000)
    real, calls = ingest._settle, []

    def second_is_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "_settle", second_is_interrupted)
    result = run("ingest", str(usage), "--chunk-rows", "1000")
    assert result.exit_code == 130
    assert result.stderr.startswith(
        "carryover: interrupted; stored before it stopped: 1 chunk(s), 1,000 rows "
        f"(1,000 accepted, 0 duplicates, 0 rejected); the last committed chunk was {usage} "
        "rows 1-1,000;")
    assert _stored(db) == 1_000
