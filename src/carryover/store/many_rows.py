"""Many rows written by one statement: `update_many` and `insert_many`.

`update_many(conn, table, keys, sets, rows)` sets the `sets` columns of the
rows found by their `keys` columns, each row its own values. On PostgreSQL it
is one `UPDATE ... FROM json_to_recordset(rows) AS v(...)` whatever the number
of rows: one statement for the server to plan and run (an executemany sends,
and the server runs, one UPDATE per row). On SQLite, where a statement costs no
round trip, it is an executemany of the same UPDATE. The statements are built
once per (table, keys, sets).

`insert_many(conn, table, rows, on_conflict)` inserts rows the same way: on
PostgreSQL one `INSERT ... SELECT ... FROM json_to_recordset(rows)`, elsewhere an
executemany of the dialect's INSERT. What a row whose key is taken does is said
once (`OnConflict`: keep the stored row, or set some columns from the new one)
and both statements are built from it, once per (dialect, table, rule).

Why JSON rather than one array per column: the rows go to the server as one
text, made by the json module's C encoder straight from the row mappings, and
the server's JSON parser types them by the column list of the statement. With
arrays, the driver converted every value of every column in Python (psycopg's
list dumper), which was a tenth of a charging worker's CPU under load.
Instants are written as ISO 8601 in UTC by `UTCInstant` itself (so naive ones are
refused, as on every other path); JSON columns are embedded as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    and_,
    bindparam,
    insert,
    literal_column,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from carryover.store.tables import Instant

_POSTGRESQL = postgresql.dialect()  # only its name is read by Instant


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
    _driver_execute(conn, _recordset_update(conn.dialect, table, keys, sets, also), rows)


@dataclass(frozen=True, slots=True)
class OnConflict:
    """A row whose `keys` are taken: its `update` columns replace the stored ones
    (DO UPDATE SET c = EXCLUDED.c), or with no `update` the stored row stays
    (DO NOTHING)."""

    keys: tuple[str, ...]
    update: tuple[str, ...] = ()

    def sql(self) -> str:
        target = f"ON CONFLICT ({', '.join(self.keys)})"
        if not self.update:
            return f"{target} DO NOTHING"
        return f"{target} DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}"
                                                     for c in self.update)


def insert_many(conn: Connection, table: Table, rows: list[dict],
                on_conflict: OnConflict | None = None) -> None:
    """Insert `rows` (all with the same columns), a taken key handled by `on_conflict`
    (None: a taken key is an error, as for any insert)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(_dialect_insert(conn.dialect.name, table, on_conflict), rows)
        return
    _driver_execute(conn, _recordset_insert(conn.dialect, table, tuple(rows[0]),
                                            on_conflict.sql() if on_conflict else ""), rows)


@cache
def _dialect_insert(dialect: str, table: Table, on_conflict: OnConflict | None) -> Any:
    # Built once per rule: building `excluded` copies every column of the table, which
    # was a tenth of an Nchf request's CPU when it was done per call.
    if on_conflict is None:
        return insert(table).inline()
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).inline()
    if not on_conflict.update:
        return statement.on_conflict_do_nothing(index_elements=list(on_conflict.keys))
    return statement.on_conflict_do_update(
        index_elements=list(on_conflict.keys),
        set_={c: statement.excluded[c] for c in on_conflict.update})


def _driver_execute(conn: Connection, sql: str, rows: list[dict]) -> None:
    # Straight to psycopg, on the connection (and in the transaction) SQLAlchemy holds:
    # the statement is fixed text with one parameter, so SQLAlchemy's compilation,
    # parameter processing and result set-up would be all of its cost, about a tenth
    # of a small charging batch's CPU. (SQLAlchemy's cursor events do not see it.)
    conn.connection.driver_connection.execute(sql, {"rows": _json_rows(rows)})


def _json_rows(rows: list[dict]) -> str:
    # Keys the statement does not name are ignored by json_to_recordset.
    return json.dumps(rows, default=_json_value, separators=(",", ":"))


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):  # the rule every Instant column applies (refuses naive)
        return Instant.process_bind_param(value, _POSTGRESQL).isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written as a recordset value")


def _recordset(dialect: Any, table: Table, columns: tuple) -> tuple[str, dict[str, str]]:
    """The `json_to_recordset(...) AS v(...)` clause, and each column's value in SQL."""
    types, values = [], {}
    for c in columns:
        kind = table.c[c].type
        if isinstance(kind, JSON):
            types.append(f'"{c}" json')
            # A JSON null and a missing value both come out as SQL NULL; a column
            # that stores None as JSON null (SQLAlchemy's default) gets it back.
            values[c] = f'v."{c}"' if kind.none_as_null else f"""COALESCE(v."{c}", 'null'::json)"""
        else:
            types.append(f'"{c}" {kind.compile(dialect=dialect)}')
            values[c] = f'v."{c}"'
    return f"json_to_recordset(CAST(%(rows)s AS json)) AS v({', '.join(types)})", values


@cache
def _recordset_insert(dialect: Any, table: Table, columns: tuple, conflict: str) -> str:
    source, values = _recordset(dialect, table, columns)
    names = ", ".join(f'"{c}"' for c in columns)
    return (f'INSERT INTO "{table.name}" ({names}) '
            f"SELECT {', '.join(values[c] for c in columns)} FROM {source} {conflict}")


@cache
def _each(table: Table, keys: tuple, sets: tuple, also: str):
    values = {c: bindparam(f"p_{c}") for c in sets}
    statement = update(table).where(and_(*(table.c[k] == bindparam(f"p_{k}") for k in keys)))
    if also:
        name, _, expression = also.partition("=")
        values[name.strip()] = literal_column(expression.strip())
    return statement.values(values)


@cache
def _recordset_update(dialect, table: Table, keys: tuple, sets: tuple, also: str) -> str:
    source, values = _recordset(dialect, table, keys + sets)
    assignments = [f'"{c}" = {values[c]}' for c in sets] + ([also] if also else [])
    match = " AND ".join(f't."{k}" = v."{k}"' for k in keys)
    return (f'UPDATE "{table.name}" AS t SET {", ".join(assignments)} '
            f"FROM {source} WHERE {match}")
