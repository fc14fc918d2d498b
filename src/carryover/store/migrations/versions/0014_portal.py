"""The subscriber portal: one-time sign-in links and sessions.

See carryover.store.portal_tables and docs/portal.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0014"
down_revision: str | None = "carryover_0013"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.Column("used_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(["line_id"], ["lines.id"],
                                name=op.f("fk_portal_links_line_id_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_links_token_hash")),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("via", sa.String(64), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.Column("ended_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_portal_sessions_account_id_accounts")),
        sa.ForeignKeyConstraint(["line_id"], ["lines.id"],
                                name=op.f("fk_portal_sessions_line_id_lines")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_portal_sessions")),
    )


def downgrade() -> None:
    op.drop_table("portal_sessions")
    op.drop_table("portal_links")
