"""Nchf sessions: what tells requests apart, and where to ask for re-authorization.

`create_key` is a SHA-256 of what makes two creates the same create (the NF, the
subscriber, the PDU session, the invocation sequence number;
services.charging.model.create_key), unique among open sessions, so a create sent
again, even to another worker at the same instant, gets the first session's answer
and opens nothing. `last_digest` is what the last answered request said
(ChargingRequest.digest): a request numbered as that one is its retransmission only
if it says the same. Sessions of the previous schema keep null in both: a copy of
their create would open a session of its own, and their next request is told by
its number alone, as before. `notify_uri` is where the session's create asked to
be notified, and `reauthorizations` the re-authorization requests owed there (null
for sessions of the previous schema: they are not notified). See docs/nchf.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0016"
down_revision: str | None = "carryover_0015"

OPEN = "released_at IS NULL"
WATCHED = "released_at IS NULL AND notify_uri IS NOT NULL"
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("charging_sessions") as batch:
        batch.add_column(sa.Column("create_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("notify_uri", sa.String(2000), nullable=True))
    op.create_table(
        "reauthorizations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(64), sa.ForeignKey("charging_sessions.ref"),
                  nullable=False),
        sa.Column("notify_uri", sa.String(2000), nullable=False),
        sa.Column("rating_groups", sa.JSON, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Instant, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", Instant),
    )
    op.create_index("ix_reauthorizations_due", "reauthorizations",
                    ["status", "next_attempt_at"])
    op.create_index("ux_charging_sessions_open_create", "charging_sessions", ["create_key"],
                    unique=True, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    op.create_index("ix_charging_sessions_watched", "charging_sessions", ["account_id"],
                    postgresql_where=sa.text(WATCHED), sqlite_where=sa.text(WATCHED))


def downgrade() -> None:
    op.drop_table("reauthorizations")
    op.drop_index("ix_charging_sessions_watched", table_name="charging_sessions")
    op.drop_index("ux_charging_sessions_open_create", table_name="charging_sessions")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35 and later): a copy of the table
    # would have to drop the original, which quota_holds' rows refer to.
    with op.batch_alter_table("charging_sessions", recreate="never") as batch:
        batch.drop_column("notify_uri")
        batch.drop_column("last_digest")
        batch.drop_column("create_key")
