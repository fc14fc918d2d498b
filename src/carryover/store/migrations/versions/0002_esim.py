"""eSIM: profile inventory, download orders, profile history.

Written out in full, like 0001, so this revision keeps creating the same tables
when esim_tables.py moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0002"
down_revision: str | None = "carryover_0001"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "esim_profiles",
        sa.Column("iccid", sa.String(20), nullable=False),
        sa.Column("imsi", sa.String(15), nullable=True),
        sa.Column("profile_type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("eid", sa.String(32), nullable=True),
        sa.Column("imported_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("iccid", name=op.f("pk_esim_profiles")),
        sa.UniqueConstraint("imsi", name=op.f("uq_esim_profiles_imsi")),
    )
    op.create_index("ix_esim_profiles_type_state", "esim_profiles", ["profile_type", "state"])
    op.create_table(
        "esim_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("iccid", sa.String(20), nullable=False),
        sa.Column("eid", sa.String(32), nullable=True),
        sa.Column("matching_id", sa.String(255), nullable=True),
        sa.Column("smdp_address", sa.String(253), nullable=True),
        sa.Column("cc_hash", sa.String(200), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("closed_at", Instant, nullable=True),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["line_id"], ["lines.id"],
                                name=op.f("fk_esim_orders_line_id_lines")),
        sa.ForeignKeyConstraint(["iccid"], ["esim_profiles.iccid"],
                                name=op.f("fk_esim_orders_iccid_esim_profiles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_esim_orders")),
    )
    op.create_index(op.f("ix_esim_orders_line_id"), "esim_orders", ["line_id"])
    op.create_index(op.f("ix_esim_orders_iccid"), "esim_orders", ["iccid"])
    op.create_table(
        "esim_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("iccid", sa.String(20), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["iccid"], ["esim_profiles.iccid"],
                                name=op.f("fk_esim_events_iccid_esim_profiles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_esim_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_esim_events_dedupe_key")),
    )
    op.create_index("ix_esim_events_iccid_at", "esim_events", ["iccid", "at"])


def downgrade() -> None:
    for table in ("esim_events", "esim_orders", "esim_profiles"):
        op.drop_table(table)
