"""Many rows written by one statement: `update_many` and `insert_many`.

`update_many(conn, table, keys, sets, rows)` sets the `sets` columns of the
rows found by their `keys` columns, each row its own values. On PostgreSQL it
is one `UPDATE ... FROM unnest(arrays) AS v(...)` whatever the number of rows:
one statement for the server to plan and run, and no per-row work in the
driver (an executemany sends, and the server runs, one UPDATE per row). On
SQLite, where a statement costs no round trip, it is an executemany of the
same UPDATE. The statements are built once per (table, keys, sets).

`insert_many(conn, statement, table, rows, conflict)` inserts rows the same way:
on PostgreSQL one `INSERT ... SELECT * FROM unnest(arrays)` (with `conflict`, an
`ON CONFLICT` clause, the same as the dialect statement's), elsewhere an
executemany of `statement`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    TextClause,
    TypeDecorator,
    and_,
    bindparam,
    literal_column,
    text,
    update,
)


def update_many(conn: Connection, table: Table, keys: Sequence[str], sets: Sequence[str],
                rows: list[dict], also: str = "") -> None:
    """`rows` map every key and set column to its value; `also` is extra SQL for the
    SET clause of every row (e.g. `version = version + 1`)."""
    if not rows:
        return
    keys, sets = tuple(keys), tuple(sets)
    if conn.dialect.name != "postgresql":
        conn.execute(_each(table, keys, sets, also),
                     [{f"p_{c}": row[c] for c in keys + sets} for row in rows])
        return
    conn.execute(_unnest(conn.dialect, table, keys, sets, also),
                 _arrays(conn, table, keys + sets, rows))


def insert_many(conn: Connection, statement: Any, table: Table, rows: list[dict],
                conflict: str = "") -> None:
    """Insert `rows` (all with the same columns). `statement` is the dialect's insert
    (with its ON CONFLICT clause, if any), used where unnest is not; `conflict` is
    that clause in SQL for PostgreSQL's single statement."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(statement, rows)
        return
    columns = tuple(rows[0])
    conn.execute(_insert_unnest(conn.dialect, table, columns, conflict),
                 _arrays(conn, table, columns, rows))


def _arrays(conn: Connection, table: Table, columns: tuple, rows: list[dict]) -> dict:
    arrays = {}
    for c in columns:
        values = [row[c] for row in rows]
        kind = table.c[c].type
        if isinstance(kind, JSON):  # None as SQLAlchemy stores it: JSON null, or SQL NULL
            values = [None if v is None and kind.none_as_null else json.dumps(v)
                      for v in values]
        elif isinstance(kind, TypeDecorator):  # e.g. Instant: refuses naive datetimes
            values = [kind.process_bind_param(v, conn.dialect) for v in values]
        arrays[f"p_{c}"] = values
    return arrays


def _array_type(dialect: Any, table: Table, c: str) -> str:
    kind = table.c[c].type
    if isinstance(kind, JSON):
        return "json[]"
    return kind.compile(dialect=dialect) + "[]"


@cache
def _insert_unnest(dialect: Any, table: Table, columns: tuple, conflict: str) -> TextClause:
    arrays = ", ".join(f"CAST(:p_{c} AS {_array_type(dialect, table, c)})" for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    return text(f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays}) '
                f"{conflict}")


@cache
def _each(table: Table, keys: tuple, sets: tuple, also: str):
    values = {c: bindparam(f"p_{c}") for c in sets}
    statement = update(table).where(and_(*(table.c[k] == bindparam(f"p_{k}") for k in keys)))
    if also:
        name, _, expression = also.partition("=")
        values[name.strip()] = literal_column(expression.strip())
    return statement.values(values)


@cache
def _unnest(dialect, table: Table, keys: tuple, sets: tuple, also: str) -> TextClause:
    columns = keys + sets
    assignments = [f'"{c}" = v."{c}"' for c in sets] + ([also] if also else [])
    arrays = ", ".join(f"CAST(:p_{c} AS {_array_type(dialect, table, c)})" for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    match = " AND ".join(f't."{k}" = v."{k}"' for k in keys)
    return text(f'UPDATE "{table.name}" AS t SET {", ".join(assignments)} '
                f"FROM unnest({arrays}) AS v({names}) WHERE {match}")
