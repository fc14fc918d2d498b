"""eSIM history rows no longer need a profile: `esim_events.iccid` loses its foreign key.

An authenticated SM-DP+ notification about an ICCID the inventory does not hold is
refused, and kept in the history like every other refused notification, so an
operator can see what the SM-DP+ reported. No row changes. See
carryover.store.esim_tables.esim_events and docs/esim.md.
"""

from __future__ import annotations

from alembic import op

revision: str = "carryover_0013"
down_revision: str | None = "carryover_0012"

FOREIGN_KEY = "fk_esim_events_iccid_esim_profiles"


def upgrade() -> None:
    with op.batch_alter_table("esim_events") as batch:
        batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")


def downgrade() -> None:
    # Rows about ICCIDs outside the inventory cannot satisfy the key again.
    op.execute("DELETE FROM esim_events WHERE iccid NOT IN (SELECT iccid FROM esim_profiles)")
    with op.batch_alter_table("esim_events") as batch:
        batch.create_foreign_key(FOREIGN_KEY, "esim_profiles", ["iccid"], ["iccid"])
