"""Plan versions: every plan id's versions, immutable; existing plans become version 1.

See carryover.store.tables.plan_versions for what each column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0010"
down_revision: str | None = "carryover_0009"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("plan_id", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_at", Instant, nullable=False),
        sa.Column("effective_at", Instant, nullable=True),
        sa.Column("next_boundary_after", Instant, nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"],
                                name=op.f("fk_plan_versions_plan_id_plans")),
        sa.PrimaryKeyConstraint("plan_id", "version", name=op.f("pk_plan_versions")),
    )
    # Every stored plan is in force as it is, from the beginning: version 1.
    op.execute("INSERT INTO plan_versions (plan_id, version, body, source, recorded_at) "
               "SELECT id, 1, body, source, loaded_at FROM plans")


def downgrade() -> None:
    op.drop_table("plan_versions")
