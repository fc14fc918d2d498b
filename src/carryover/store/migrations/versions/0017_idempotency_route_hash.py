"""Idempotency keys are found by a SHA-256 of the route, not by the route itself.

The route of a stored response is the method and the concrete path the client sent
("POST /v1/lines/a1/top-ups"). It was the primary key's VARCHAR(200), so on
PostgreSQL a keyed request on a longer path (a line id of a few hundred characters,
as a fuzzer sends) failed with a 500 instead of its answer. `route_hash` is the
SHA-256 hex of the route's UTF-8 (services.access.idempotency.route_hash), fixed-length
and different for any two routes; it takes the route's place in the primary key,
and `route` is kept beside it as text of any length. Rows of the previous schema
get the hash of the route they hold, so their replays go on.

The downgrade puts `route` back in the key as VARCHAR(200). A stored response of a
route longer than 200 characters is forgotten first: the previous schema cannot
hold it on PostgreSQL, and such a path names no line, account or other resource
(their ids are at most 64 characters), so what it stored was a refusal that a
retry gets again.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0017"
down_revision: str | None = "carryover_0016"

TABLE = "idempotency_keys"
PK = "pk_idempotency_keys"
OLD_ROUTE = 200
rows = sa.table(TABLE, sa.column("route", sa.Text), sa.column("route_hash", sa.String(64)))


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("route_hash", sa.String(64), nullable=True))
    conn = op.get_bind()
    routes = conn.execute(sa.select(rows.c.route).distinct()).scalars().all()
    if routes:
        conn.execute(rows.update().where(rows.c.route == sa.bindparam("old"))
                     .values(route_hash=sa.bindparam("digest")),
                     [{"old": r, "digest": hashlib.sha256(r.encode()).hexdigest()}
                      for r in routes])
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("route_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("route", existing_type=sa.String(OLD_ROUTE), type_=sa.Text,
                           existing_nullable=False)
        batch.drop_constraint(PK, type_="primary")
        batch.create_primary_key(PK, ["api_key_id", "route_hash", "key"])


def downgrade() -> None:
    op.execute(rows.delete().where(sa.func.length(rows.c.route) > OLD_ROUTE))
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("route", existing_type=sa.Text, type_=sa.String(OLD_ROUTE),
                           existing_nullable=False)
        batch.drop_constraint(PK, type_="primary")
        batch.create_primary_key(PK, ["api_key_id", "route", "key"])
        batch.drop_column("route_hash")
