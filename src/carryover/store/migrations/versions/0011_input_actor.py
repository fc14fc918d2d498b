"""Who gave each input, and when it was recorded.

- `inputs.actor`: the API key id (`key_...`) or `cli` behind a top-up, plan
  change, limit, gift or line opening; null for inputs stored before this.
- `inputs.recorded_at`: when carryover stored the input, beside `at`, when it
  takes effect; an input effective before it was recorded was back-dated, which
  only an operator may do (docs/security.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0011"
down_revision: str | None = "carryover_0010"


def upgrade() -> None:
    with op.batch_alter_table("inputs") as batch:
        batch.add_column(sa.Column("actor", sa.String(64), nullable=True))
        batch.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inputs") as batch:
        batch.drop_column("recorded_at")
        batch.drop_column("actor")
