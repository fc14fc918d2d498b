"""One statement never holds the database longer than `statement_timeout_seconds`.

Issue 22 item 2 ("one request can never hold the database longer than a set
statement timeout") on both backends: PostgreSQL enforces its own
statement_timeout; SQLite had none, so a slow statement held the file for as long
as it ran. Now a progress handler interrupts it (store/engine.py). Either way the
statement fails with the same words on the CLI and the same problem on the API.
"""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from carryover.api import problems
from carryover.cli import failures
from carryover.store.engine import is_statement_timeout, make_engine
from carryover.store.uow import UnitOfWork

# Counting to 10^9 in a recursive CTE takes minutes on SQLite; pg_sleep as long.
SLOW = {"sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                  "WHERE i < 1000000000) SELECT count(*) FROM n",
        "postgresql": "SELECT pg_sleep(120)"}
# A statement with real work in it that ends well inside the timeout.
NORMAL = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
          "WHERE i < 20000) SELECT count(*) FROM n")


def _slow(db_url: str) -> str:
    return SLOW["sqlite" if db_url.startswith("sqlite") else "postgresql"]


def test_a_slow_statement_is_cancelled_within_the_timeout(db_url) -> None:
    engine = make_engine(db_url, statement_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text(_slow(db_url))).scalar()
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5, elapsed
    assert is_statement_timeout(caught.value)
    # The connection is usable afterwards, and a normal statement is not affected.
    with engine.connect() as conn:
        assert conn.execute(text(NORMAL)).scalar() == 20000
        time.sleep(0.7)  # idle time between statements does not count
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_raw_statement_is_timed_from_its_own_start(db_url) -> None:
    # The bulk writers use the DBAPI cursor directly (store/raw_cursor.py): a statement
    # of theirs after a pause must not inherit the clock of an earlier one.
    from carryover.store.raw_cursor import Raw
    engine = make_engine(db_url, statement_timeout=0.5)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        time.sleep(0.7)
        raw = Raw(conn)
        assert raw.run(NORMAL) == [(20000,)]
        with pytest.raises(Exception) as caught:
            raw.run(_slow(db_url))
        assert is_statement_timeout(caught.value)


def test_without_a_timeout_nothing_is_interrupted(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}", statement_timeout=0)
    with engine.connect() as conn:
        assert conn.execute(text(NORMAL)).scalar() == 20000


def test_a_cancelled_statement_reads_the_same_on_the_cli_and_the_api(db_url) -> None:
    engine = make_engine(db_url, statement_timeout=0.3)
    with pytest.raises(Exception) as caught, UnitOfWork(engine) as uow:
        uow.conn.execute(text(_slow(db_url))).scalar()
    said = failures.describe(caught.value)
    assert said is not None
    assert said.why == ("a statement ran longer than the statement timeout "
                        "(statement_timeout_seconds) and was cancelled; its transaction "
                        "was rolled back")

    app = FastAPI()
    problems.install(app)

    @app.get("/slow")
    def slow() -> dict:
        with UnitOfWork(engine) as uow:
            uow.conn.execute(text(_slow(db_url))).scalar()
        return {}

    answer = TestClient(app, raise_server_exceptions=False).get("/slow")
    assert answer.status_code == 500
    assert answer.json()["detail"] == ("a database statement ran longer than the statement "
                                       "timeout and was cancelled; its transaction was "
                                       "rolled back")


def test_each_row_of_an_executemany_is_timed_on_its_own(tmp_path) -> None:
    # PostgreSQL times each row of an executemany as a statement; on SQLite a long
    # batch of quick rows (bulk ingest) must not be cut off as one slow statement.
    from carryover.store.raw_cursor import Raw
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}", statement_timeout=0.2)
    rows = [(i,) for i in range(400_000)]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (i INTEGER)"))
        started = time.monotonic()
        Raw(conn).many("INSERT INTO t (i) VALUES (?)", rows)
        conn.execute(text("INSERT INTO t (i) VALUES (:i)"), [{"i": i} for i, in rows])
        assert time.monotonic() - started > 0.2  # longer than the timeout altogether
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 800_000
