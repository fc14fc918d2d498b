"""Several independent statements in one round trip.

`read_all(conn, queries)` runs SELECTs that do not depend on each other and
returns each one's rows, in order. On PostgreSQL they go out together in
psycopg's pipeline mode: the server answers them one after the other, but the
client waits once, not once per query. That matters on a busy machine, where
every wait for the server also costs a wait for the CPU and the GIL. Elsewhere
(SQLite: no network) they simply run one by one.

`pipeline(conn)` is the same for writes that need no answer but success: inside
the block they go out one after the other without waiting for each, and their
results come back together when it ends (an error surfaces there).

On PostgreSQL the rows are the driver's (named tuples): instants come back aware
and JSON parsed, as the table types would give them; callers pass instants
through `utc()` either way. psycopg is imported there only: a SQLite install
does not have it (it is the `postgres` extra).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable


@lru_cache(maxsize=256)
def _compiled(query: Executable, dialect: Any) -> Any:
    # The hot path's statements are module constants: compiled once each.
    return query.compile(dialect=dialect)


def read_all(conn: Connection, queries: Sequence[tuple[Executable, dict]]) -> list[list[Any]]:
    if conn.dialect.name != "postgresql" or len(queries) <= 1:
        return [conn.execute(query, params).all() for query, params in queries]
    from psycopg.rows import namedtuple_row  # only on PostgreSQL, where psycopg is installed

    raw = conn.connection.driver_connection
    cursors = []
    with raw.pipeline():
        for query, params in queries:
            # The expanding IN lists become one placeholder per value, as execute does.
            state = _compiled(query, conn.dialect).construct_expanded_state(params)
            cursor = raw.cursor(row_factory=namedtuple_row)
            cursor.execute(state.statement, state.parameters)
            cursors.append(cursor)
    # Leaving the block waited for every answer (or raised the first error).
    try:
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


@contextlib.contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    if conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline():
        yield
