"""Bitemporal ledger: `ledger_entries.at` becomes `effective_at`, and `recorded_at` is new.

Every existing row keeps its instant as both: before this revision an entry had
one instant, the one it was booked under, so that is the best that is known of
when it was recorded and of where it sat in the fold. No row is dropped or
changed otherwise. See carryover.store.tables.ledger_entries and
docs/semantics.md ("The bitemporal ledger").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0012"
down_revision: str | None = "carryover_0011"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_index("ix_ledger_account_at", table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("at", new_column_name="effective_at", existing_type=Instant,
                           existing_nullable=False)
        batch.add_column(sa.Column("recorded_at", Instant, nullable=True))
    op.execute("UPDATE ledger_entries SET recorded_at = effective_at")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("recorded_at", existing_type=Instant, nullable=False)
    op.create_index("ix_ledger_account_effective", "ledger_entries",
                    ["account_id", "effective_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_account_effective", table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("recorded_at")
        batch.alter_column("effective_at", new_column_name="at", existing_type=Instant,
                           existing_nullable=False)
    op.create_index("ix_ledger_account_at", "ledger_entries", ["account_id", "at"])
