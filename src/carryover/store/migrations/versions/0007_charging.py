"""Real-time charging (Nchf): charging sessions and the quota they hold.

See carryover.store.charging_tables for what each column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0007"
down_revision: str | None = "carryover_0006"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "charging_sessions",
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("subscriber", sa.String(100), nullable=False),
        sa.Column("opened_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_result", sa.JSON(), nullable=False),
        sa.Column("released_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_charging_sessions_account_id_accounts")),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_charging_sessions")),
    )
    op.create_table(
        "quota_holds",
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("rating_group", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("granted_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_quota_holds_account_id_accounts")),
        sa.ForeignKeyConstraint(["ref"], ["charging_sessions.ref"],
                                name=op.f("fk_quota_holds_ref_charging_sessions")),
        sa.PrimaryKeyConstraint("ref", "rating_group", name=op.f("pk_quota_holds")),
    )
    op.create_index("ix_quota_holds_account", "quota_holds", ["account_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_quota_holds_account", table_name="quota_holds")
    op.drop_table("quota_holds")
    op.drop_table("charging_sessions")
