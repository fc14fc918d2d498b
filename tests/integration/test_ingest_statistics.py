"""On PostgreSQL an ingest analyzes the tables it joins when they never were.

A database just provisioned has no planner statistics until autovacuum comes by;
the chunk's notice reads then ran as nested loops over every bucket (a profile
of 200,000 events: 0.46 s against 0.16 s once analyzed). The first chunk of a
run analyzes them; the temporary tables are analyzed as they are filled.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from carryover.services.ingest.chunks import ingest_chunks
from carryover.store.engine import dispose_engines
from carryover.store.uow import UnitOfWork
from tests.conftest import reset_pg
from tests.integration.test_ingest_cache import setup
from tests.integration.test_ingest_transactions import feed


def analyzed(engine) -> dict[str, bool]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE relname IN ('accounts', 'buckets', 'counters', "
            "'lines')"))
        return dict(rows.all())


@pytest.mark.postgres
def test_the_first_chunk_analyzes_what_never_was(pg_database_url):
    reset_pg(pg_database_url)
    engine = setup(pg_database_url)
    with engine.begin() as conn:  # as a database made and filled moments ago stands
        for table in ("accounts", "buckets", "counters", "lines"):
            conn.execute(text(f"SELECT pg_stat_reset_single_table_counters('{table}'::regclass)"))
    assert not any(analyzed(engine).values())
    ingest_chunks(UnitOfWork(engine), feed("f", [3]), "t")
    assert analyzed(engine) == {"accounts": True, "buckets": True, "counters": True,
                                "lines": True}
    dispose_engines()
