"""Alembic environment for carryover's own migrations.

carryover configures Alembic in code (carryover.store.schema.alembic_config), so
no alembic.ini is needed. The caller passes an open connection in
`config.attributes["connection"]` and owns its transaction, which lets
ensure_schema check, lock and migrate in one transaction. Without a connection
(a developer running the `alembic` command with an ini file) the URL comes from
the ini's sqlalchemy.url, else from carryover's settings.
"""

from __future__ import annotations

from alembic import context

from carryover.store.tables import metadata

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from carryover.settings import get_settings

    return get_settings().database_url


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    from carryover.store.engine import make_engine

    with make_engine(_url()).connect() as connection:
        _configure(connection)
        connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
