"""The bulk tables lose their foreign key to `accounts`: `usage_events`, `ledger_entries`,
`buckets`, `counters` and `outbox` (`fk_<table>_account_id_accounts`).

The check cost every row written, and it was the largest single cost of a bulk write
(issue #20): a million events in one transaction, spread over 100,000 accounts, took
9.1-11.0 s on SQLite with the key and 6.4-7.7 s without (executemany), and 13.4-14.5
s against 6.0-9.5 s on PostgreSQL (COPY); in a profiled PostgreSQL ingest the COPY of
the ledger entries went from 1.8 to 0.7 s. It caught nothing: no account is ever
deleted or renumbered, and every writer of these tables takes the account id from a
`lines` or `accounts` row it read in the same transaction. `lines.account_id`,
`inputs.account_id` and every other foreign key stay. No row changes. See
carryover.store.tables and docs/architecture.md ("Referential integrity").

PostgreSQL drops the constraints. SQLite cannot drop a constraint in place, and a
batch copy of the tables would rewrite every row of the largest tables in one
transaction (and cannot drop `outbox` while `webhook_deliveries` references it with
foreign keys on). A foreign key changes nothing on disk, though, so this takes
SQLite's own procedure for removing one (https://sqlite.org/lang_altertable.html,
"making other kinds of table schema changes"): the constraint's clause is cut from
the table's CREATE TABLE text in sqlite_schema and the schema version moved on, so
every connection reads the schema again. The columns, keys, indexes (the partial
`ix_counters_big` too), UNIQUE constraints and rowids stay exactly as they were, and
it takes milliseconds (0.02 s beside a million events, where a batch copy of
`usage_events` alone took 5 s).

The downgrade creates the keys again (on SQLite, the clause goes back where the
table's DDL had it, after its primary key), first making sure every row still names
an account: a row that does not is reported, and nothing is changed or deleted.
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import Connection

revision: str = "carryover_0019"
down_revision: str | None = "carryover_0018"

TABLES = ("usage_events", "ledger_entries", "buckets", "counters", "outbox")


def foreign_key(table: str) -> str:
    return f"fk_{table}_account_id_accounts"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rewrite_sqlite(bind, _without_key)
        return
    for table in TABLES:
        op.drop_constraint(foreign_key(table), table, type_="foreignkey")


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        orphans = bind.exec_driver_sql(
            f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM accounts a WHERE a.id = t.account_id)").scalar_one()
        if orphans:
            raise RuntimeError(
                f"{table} has {orphans} rows whose account_id names no account: the foreign "
                f"key {foreign_key(table)} cannot be created again; nothing was changed")
    if bind.dialect.name == "sqlite":
        _rewrite_sqlite(bind, _with_key)
        return
    for table in TABLES:
        op.create_foreign_key(foreign_key(table), table, "accounts", ["account_id"], ["id"])


# ---- SQLite: the CREATE TABLE text in sqlite_schema ------------------------------------

def _clause(table: str) -> re.Pattern[str]:
    """The key's clause with the separator before it, as SQLAlchemy writes it (quotes
    and spacing allowed)."""
    name, q = re.escape(foreign_key(table)), '["`]?'
    return re.compile(
        rf",\s*CONSTRAINT\s+{q}{name}{q}\s+FOREIGN\s+KEY\s*\(\s*{q}account_id{q}\s*\)\s*"
        rf"REFERENCES\s+{q}accounts{q}\s*\(\s*{q}id{q}\s*\)", re.IGNORECASE)


def _without_key(table: str, sql: str) -> str:
    new, found = _clause(table).subn("", sql)
    if found != 1:
        raise RuntimeError(f"{table}: found {found} clauses of {foreign_key(table)} in its "
                           f"CREATE TABLE, not 1: {sql!r}")
    return new


def _with_key(table: str, sql: str) -> str:
    clause = (f", \n\tCONSTRAINT {foreign_key(table)} FOREIGN KEY(account_id) "
              f"REFERENCES accounts (id)")
    primary = re.search(rf"CONSTRAINT\s+[\"`]?pk_{table}[\"`]?\s+PRIMARY\s+KEY\s*\([^)]*\)",
                        sql, re.IGNORECASE)
    if primary is not None:  # where the table's DDL had it
        return sql[:primary.end()] + clause + sql[primary.end():]
    end = sql.rstrip().rstrip(")").rstrip()
    return end + clause + "\n)"


def _references_accounts(bind: Connection, table: str) -> bool:
    return any(row[2] == "accounts" and row[3] == "account_id"
               for row in bind.exec_driver_sql(f"PRAGMA foreign_key_list({table})"))


def _rewrite_sqlite(bind: Connection, change) -> None:
    """Apply `change(table, sql)` to the CREATE TABLE text of each table that needs it
    (the key present to drop, or absent to create), then make every connection read the
    schema again."""
    dropping = change is _without_key
    todo = [t for t in TABLES if _references_accounts(bind, t) == dropping]
    if not todo:
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    # Every new text is made before any is written: a table that does not read as
    # expected stops the migration with the schema untouched.
    texts = {t: change(t, bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (t,)).scalar_one())
        for t in todo}
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table, sql in texts.items():
            bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' "
                                 "AND name = ?", (sql, table))
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        # RESET: off, and this connection reads the schema again at once (older SQLite
        # takes it as OFF; the query after it reads the moved schema version).
        bind.exec_driver_sql("PRAGMA writable_schema = RESET")
    bind.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1").all()
    for table in todo:
        if _references_accounts(bind, table) == dropping:  # pragma: no cover - a bug here
            raise RuntimeError(f"{table}: the schema change of {foreign_key(table)} did not "
                               "take")
