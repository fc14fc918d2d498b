"""ensure_schema on real SQLite and PostgreSQL: create, upgrade, refuse; SQLite locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from carryover.store.engine import make_engine, read_only
from carryover.store.schema import (
    SchemaError,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    stamp,
)
from carryover.store.tables import metadata

CARRYOVER_TABLES = set(metadata.tables)


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_empty_database_is_created_at_head(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None

    assert ensure_schema(engine) == head_revision()

    assert current_revision(engine) == head_revision()
    assert table_names(engine) == CARRYOVER_TABLES | {"alembic_version"}
    with engine.connect() as conn:
        # The migrations build exactly what tables.py declares: columns, types,
        # nullability, keys, indexes and constraint names.
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []


def test_second_run_is_a_no_op(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, body, source, loaded_at) "
                          "VALUES ('p1', '{}', 'file', CURRENT_TIMESTAMP)"))

    assert ensure_schema(engine) == head_revision()

    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM plans")).scalars().all() == ["p1"]
    assert current_revision(engine) == head_revision()


def test_database_stamped_at_base_is_upgraded(db_url: str) -> None:
    engine = make_engine(db_url)
    stamp(engine, "base")
    assert table_names(engine) == {"alembic_version"}

    ensure_schema(engine)

    assert current_revision(engine) == head_revision()
    assert table_names(engine) == CARRYOVER_TABLES | {"alembic_version"}


def test_downgraded_database_is_upgraded_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert table_names(engine) == {"alembic_version"}

    ensure_schema(engine)

    assert current_revision(engine) == head_revision()
    assert table_names(engine) == CARRYOVER_TABLES | {"alembic_version"}


def test_newer_revision_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'carryover_9999'"))

    with pytest.raises(SchemaError) as caught:
        ensure_schema(engine)

    message = str(caught.value)
    assert "carryover_9999" in message
    assert head_revision() in message
    assert "newer" in message
    assert "\n" not in message
    assert current_revision(engine) == "carryover_9999"  # left as found


def test_foreign_database_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE widgets (id INTEGER PRIMARY KEY)"))

    with pytest.raises(SchemaError, match="not a carryover database") as caught:
        ensure_schema(engine)

    assert "widgets" in str(caught.value)
    assert table_names(engine) == {"widgets"}  # nothing was created


def test_other_alembic_project_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE widgets (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('1a2b3c4d5e6f')"))

    with pytest.raises(SchemaError, match="not a carryover database"):
        ensure_schema(engine)
    assert table_names(engine) == {"widgets", "alembic_version"}


def test_concurrent_first_runs_create_the_schema_once(db_url: str) -> None:
    engine = make_engine(db_url)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ensure_schema(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert current_revision(engine) == head_revision()


# SQLite only ---------------------------------------------------------------

@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'carryover.db'}"


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1,
                      "busy_timeout": 30000}


def test_sqlite_takes_the_write_lock_at_begin(sqlite_url: str) -> None:
    writer = make_engine(sqlite_url)
    impatient = make_engine(sqlite_url, busy_timeout=0.2)
    assert impatient is not writer
    with writer.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with writer.begin():
        # No statement yet, and still the second writer cannot start...
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), impatient.begin():
            pass
        assert time.monotonic() - started >= 0.15  # ...after waiting its busy timeout.
        # A read-only transaction does not queue behind the writer (WAL).
        with read_only(impatient).begin() as reader:
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sqlalchemy import text
    from carryover.store.engine import make_engine

    url, rounds, who, rendezvous = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    engine = make_engine(url)
    (rendezvous / f"ready-{who}").touch()
    while not (rendezvous / "go").exists():
        time.sleep(0.001)
    for _ in range(rounds):
        # Read, then write: the pattern that fails mid-transaction under a deferred BEGIN.
        with engine.begin() as conn:
            value = conn.execute(text("SELECT value FROM tally WHERE id = 1")).scalar_one()
            conn.execute(text("INSERT INTO hits (who, seen) VALUES (:who, :seen)"),
                         {"who": who, "seen": value})
            conn.execute(text("UPDATE tally SET value = :v WHERE id = 1"), {"v": value + 1})
""")


def test_sqlite_writers_in_two_processes_serialize(sqlite_url: str, tmp_path: Path) -> None:
    rounds = 200
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tally (id INTEGER PRIMARY KEY, value INTEGER)")
        conn.exec_driver_sql("CREATE TABLE hits (who TEXT, seen INTEGER)")
        conn.exec_driver_sql("INSERT INTO tally VALUES (1, 0)")
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()

    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, sqlite_url, str(rounds), who, str(rendezvous)],
            stderr=subprocess.PIPE, text=True)
        for who in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while len(list(rendezvous.glob("ready-*"))) < 2:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            break
        time.sleep(0.01)
    (rendezvous / "go").touch()
    failures = []
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        if worker.returncode != 0:
            failures.append(err.strip().splitlines()[-1] if err.strip() else worker.returncode)
    assert failures == []

    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM tally").scalar() == 2 * rounds
        seen = conn.exec_driver_sql("SELECT seen FROM hits ORDER BY seen").scalars().all()
        by_worker = dict(conn.exec_driver_sql(
            "SELECT who, count(*) FROM hits GROUP BY who").all())
    # Every transaction saw the one before it: no lost update, no failure.
    assert seen == list(range(2 * rounds))
    assert by_worker == {"a": rounds, "b": rounds}
