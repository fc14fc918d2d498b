"""Webhook endpoints can be disabled; notifications record when they were written.

- `webhook_endpoints.disabled_at`: set by `carryover webhooks remove` and
  `DELETE /v1/webhooks/{id}`; a disabled endpoint gets no new deliveries and its
  pending ones are not sent.
- `outbox.written_at`: the wall-clock instant the notification was written (its
  `at` is the instant the condition was evaluated at, often an event's time);
  the outbox lag gauge of `/metrics` measures from it. Null for older rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0005"
down_revision: str | None = "carryover_0004"

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("disabled_at", Instant, nullable=True))
    op.add_column("outbox", sa.Column("written_at", Instant, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("written_at")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("disabled_at")
