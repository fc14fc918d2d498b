"""The alert thresholds a subscriber picked for a line: `lines.alert_thresholds`.

A JSON list of whole percentages (ascending, each once, 1 to 100, at most
carryover.domain.notices.MAX_THRESHOLDS of them). Null: the line picked none and
has the defaults (50, 80, 100 %). Existing lines keep null, so their notices are
those they had. See docs/api.md and docs/portal.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0015"
down_revision: str | None = "carryover_0014"


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("alert_thresholds", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.drop_column("alert_thresholds")
