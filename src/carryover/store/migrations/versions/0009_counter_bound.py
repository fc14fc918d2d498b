"""Counters near their bound: a partial index on the few totals past 2^61.

- `ix_counters_big`: counters whose value is more than half of MAX_TOTAL (2^62,
  domain/bounds.py). Before a chunk is added, ingest reads these (almost always
  none) to refuse an event that would take a line's total past the bound
  (services/ingest/total_bounds.py), without reading every counter of the chunk's lines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0009"
down_revision: str | None = "carryover_0008"

_BIG = 2**61


def upgrade() -> None:
    where = sa.text(f"value > {_BIG}")
    op.create_index("ix_counters_big", "counters", ["value"], sqlite_where=where,
                    postgresql_where=where)


def downgrade() -> None:
    op.drop_index("ix_counters_big", table_name="counters")
