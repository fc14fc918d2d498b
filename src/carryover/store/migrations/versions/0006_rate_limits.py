"""API rate limits shared by every worker process: one GCRA state per API key.

- `api_rate_limits`: per limited key, its theoretical arrival time (`tat`,
  integer microseconds since the Unix epoch) and whether the last request was
  allowed. One INSERT ... ON CONFLICT DO UPDATE ... RETURNING per request moves
  it atomically (carryover.store.rate_limits).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0006"
down_revision: str | None = "carryover_0005"


def upgrade() -> None:
    op.create_table(
        "api_rate_limits",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("tat", sa.BigInteger(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("api_rate_limits")
