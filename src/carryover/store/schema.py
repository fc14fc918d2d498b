"""Schema versions: make any database carryover is pointed at match this code, or refuse it.

The schema is versioned by Alembic migrations shipped inside the package
(carryover/store/migrations); Alembic records the revision a database is at in
its `alembic_version` table. `ensure_schema` is called before a database is
used and settles every case in one transaction:
- empty database -> created at head;
- a carryover database at an older revision -> upgraded to head;
- already at head -> nothing to do;
- a revision this code does not know (written by a newer carryover) -> refused;
- tables but no carryover revision (someone else's database) -> refused.
Refusals raise SchemaError with one line: what was found and what to do.

Concurrent callers are serialized (BEGIN IMMEDIATE on SQLite, an advisory lock
on PostgreSQL), so two processes starting on an empty database do not both
try to create it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from carryover.settings import redact_url

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key: "carryovr" in ASCII, so no other app picks it by chance.
_PG_LOCK_KEY = int.from_bytes(b"carryovr", "big")


class SchemaError(RuntimeError):
    """This carryover cannot use the database; the message says why and what to do."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for carryover's migrations, with no ini file.

    With `connection`, migrations run on it inside the caller's transaction.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise SchemaError("carryover ships no migrations: the installation is broken")
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def current_revision(engine: Engine | Connection) -> str | None:
    """The revision the database is stamped at, or None (empty, unstamped, or at base)."""
    if isinstance(engine, Connection):
        return _read_revision(engine)
    with engine.connect() as connection:
        return _read_revision(connection)


def ensure_schema(engine: Engine) -> str:
    """Bring the database to head, or raise SchemaError. Returns the revision it ends at."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        found = _revisions(connection)
        head = head_revision()
        if found == {head}:
            return head
        where = redact_url(engine.url)
        if found is None:
            others = _foreign_tables(connection)
            if others:
                raise SchemaError(
                    f"{where} is not a carryover database: it has tables "
                    f"({_names(others)}) but no {VERSION_TABLE}; point "
                    f"CARRYOVER_DATABASE_URL at an empty or carryover database")
        unknown = sorted((found or set()) - known_revisions())
        if unknown:
            if _has_carryover_tables(connection):
                raise SchemaError(
                    f"{where} is at revision {', '.join(unknown)}, newer than this carryover "
                    f"knows (its head is {head}): upgrade carryover, or use another database")
            raise SchemaError(
                f"{where} is at revision {', '.join(unknown)}, unknown to carryover (head "
                f"{head}), and has no carryover tables: it is not a carryover database; point "
                f"CARRYOVER_DATABASE_URL at an empty or carryover database")
        command.upgrade(alembic_config(connection), "head")
        return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to `revision`, without ensure_schema's checks (tools, tests)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Run migrations down to `revision` ("base" drops every carryover table)."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def stamp(engine: Engine, revision: str) -> None:
    """Record `revision` without running anything (repairs, tests)."""
    with engine.begin() as connection:
        command.stamp(alembic_config(connection), revision, purge=True)


def _revisions(connection: Connection) -> set[str] | None:
    """Revisions in alembic_version; None when the table does not exist."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return {row[0] for row in rows}


def _read_revision(connection: Connection) -> str | None:
    found = _revisions(connection)
    if not found:
        return None
    return ",".join(sorted(found))


def _foreign_tables(connection: Connection) -> list[str]:
    return sorted(name for name in inspect(connection).get_table_names()
                  if name != VERSION_TABLE)


def _has_carryover_tables(connection: Connection) -> bool:
    from carryover.store.tables import metadata

    return bool(set(metadata.tables) & set(inspect(connection).get_table_names()))


def _names(tables: list[str], limit: int = 5) -> str:
    shown = ", ".join(tables[:limit])
    return shown + (f" and {len(tables) - limit} more" if len(tables) > limit else "")
