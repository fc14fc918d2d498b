"""A long ingest run: its checkpoint thread (store.wal_checkpoints), on real SQLite
files, and its collector thresholds.

What it promises: an ingest returns with every chunk's pages in the database file;
the writer's connection gets its automatic checkpoint back, also when a chunk
fails; the thread is gone afterwards; and the WAL file does not grow past its
limit by more than a chunk. The last is checked with a checkpoint made slow on
purpose (a sleep before it: a slow disk), so that the writer is always ahead of it.
"""

from __future__ import annotations

import csv
import gc
import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from carryover import gc_tuning
from carryover.adapters.cdr_files import read_usage
from carryover.runtime import Carryover
from carryover.services.ingest import chunks as ingest
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store import wal_checkpoints
from carryover.store.engine import dispose_engines
from carryover.store.uow import UnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
MB = 1024**2
LINES, EVENTS, CHUNK = 6, 2400, 300


def world(tmp_path: Path):
    db = tmp_path / "carryover.db"
    engine = Carryover(get_settings(database_url=f"sqlite:///{db}")).open()
    for a in range(LINES):
        provisioning.create_account(UnitOfWork(engine), f"a{a}", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), f"a{a}", f"+49151000000{a:02d}", JAN,
                                 "tmobile-data-stash-10gb", line_id=f"l{a}")
    path = tmp_path / "cdr.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["event_id", "line", "at", "bytes", "received_at"])
        for k in range(EVENTS):
            when = (JAN + timedelta(days=2, seconds=30 * k)).isoformat()
            out.writerow([f"event-{k:06d}-{'x' * 40}", f"l{k % LINES}", when, MB, when])
    return engine, db, path


def chunks(path: Path):
    for chunk, rejects in read_usage(path, chunk_rows=CHUNK, now_us=0):
        yield str(path), chunk, rejects


def autocheckpoint_settings(engine) -> list[int]:
    """PRAGMA wal_autocheckpoint of every connection the pool holds."""
    held = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        return [c.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] for c in held]
    finally:
        for c in held:
            c.close()


def no_checkpoint_thread() -> bool:
    return not any(t.name == "wal-checkpoints" and t.is_alive() for t in threading.enumerate())


@pytest.fixture(autouse=True)
def _dispose():
    yield
    dispose_engines()


def test_the_database_file_alone_holds_every_chunk(tmp_path):
    engine, db, path = world(tmp_path)
    summary = ingest.ingest_chunks(UnitOfWork(engine), chunks(path), "test", long_run=True)
    assert summary.accepted == EVENTS
    # The engine is still open (no checkpoint at close yet): copy the main file only.
    shutil.copyfile(db, tmp_path / "main-only.db")
    with sqlite3.connect(tmp_path / "main-only.db") as copy:
        assert copy.execute("SELECT count(*) FROM usage_events").fetchone()[0] == EVENTS
        assert copy.execute("SELECT sum(amount) FROM usage_events").fetchone()[0] == EVENTS * MB
    assert autocheckpoint_settings(engine) and set(autocheckpoint_settings(engine)) == {1000}
    assert no_checkpoint_thread()


def test_a_failed_chunk_gives_the_settings_back(tmp_path, monkeypatch):
    engine, _, path = world(tmp_path)
    real, during = ingest._settle, []
    before = gc.get_threshold()

    def third_fails(*args, **kwargs):
        during.append(gc.get_threshold())
        if len(during) == 3:
            raise RuntimeError("chunk 3 fails")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "_settle", third_fails)
    with pytest.raises(RuntimeError, match="chunk 3 fails"):
        ingest.ingest_chunks(UnitOfWork(engine), chunks(path), "test", long_run=True)
    assert set(autocheckpoint_settings(engine)) == {1000}
    assert no_checkpoint_thread()
    # The collector ran with the ingest's thresholds, and has its own back.
    assert during == [gc_tuning.INGEST_THRESHOLDS] * 3 != [before] * 3
    assert gc.get_threshold() == before
    during.clear()
    with pytest.raises(RuntimeError, match="chunk 3 fails"):
        ingest.ingest_chunks(UnitOfWork(engine), chunks(path), "again")  # not a long run: untouched
    assert during == [before] * 3
    with engine.connect() as conn:  # the two chunks before it are committed
        assert conn.exec_driver_sql("SELECT count(*) FROM usage_events").scalar() == 2 * CHUNK


def wal_sizes(tmp_path: Path, limit: int, monkeypatch) -> list[int]:
    """The WAL file's size after each chunk, with a checkpoint that takes 0.3 s."""
    tmp_path.mkdir()
    engine, db, path = world(tmp_path)
    slow = wal_checkpoints.BackgroundCheckpoints._checkpoint

    def slow_disk(self, cursor):
        time.sleep(0.3)
        slow(self, cursor)

    monkeypatch.setattr(wal_checkpoints.BackgroundCheckpoints, "_checkpoint", slow_disk)
    monkeypatch.setattr(wal_checkpoints, "WAL_LIMIT", limit)
    sizes: list[int] = []
    ingest.ingest_chunks(UnitOfWork(engine), chunks(path), "test", long_run=True,
                         progress=lambda _n: sizes.append(Path(f"{db}-wal").stat().st_size))
    monkeypatch.undo()
    return sizes


def test_the_wal_file_stays_within_its_limit(tmp_path, monkeypatch):
    unbounded = wal_sizes(tmp_path / "unbounded", 1 << 40, monkeypatch)
    bounded = wal_sizes(tmp_path / "bounded", 0, monkeypatch)
    chunks_written = EVENTS // CHUNK
    assert len(unbounded) == len(bounded) == chunks_written
    # With the checkpoint always behind, a writer that never waits appends every chunk.
    assert all(b > a for a, b in pairwise(unbounded))
    # Limit 0: every chunk waits for the checkpoint, and the file starts again each
    # time; it holds about one chunk's pages (the first chunk's are the most).
    assert max(bounded) <= 1.5 * bounded[0]
    assert max(bounded) < unbounded[-1] / 2
