"""Notification tables: the transactional outbox and webhook delivery.

- `outbox`: one row per notification, written in the transaction of the change
  that made its condition true (services.notify.notices). The unique key
  (line, cycle_start, kind) makes each kind fire once per line per cycle,
  whichever path evaluated it and however often.
- `webhook_endpoints`: where notifications are POSTed. The secret is stored as
  given, because it must sign every delivery (HMAC-SHA256): it is shown once at
  creation and never logged or listed. `kinds` is null (every kind) or a
  comma-wrapped list such as ",usage_80,throttled,"; `since_outbox_id` is the
  last outbox row that existed when the endpoint was added (older rows are not
  sent to it); `disabled_at` is set when it is removed (no more deliveries).
  `outbox.written_at` is the wall-clock instant a notification was written (the
  outbox lag gauge measures from it; null for rows older than migration 0005).
- `webhook_deliveries`: one row per endpoint per outbox row: pending, delivered
  or dead (after the last attempt), with its attempts and next attempt instant.

They live on the same MetaData as carryover.store.tables; migration 0004 creates them, 0005 adds
`disabled_at` and `written_at`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from carryover.store.tables import Instant, delivery_columns, metadata

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),  # no foreign key (migration 0019)
    Column("line", String(64), nullable=False),
    Column("cycle_start", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", Instant, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("written_at", Instant),
    UniqueConstraint("line", "cycle_start", "kind", name="uq_outbox_line_cycle_kind"),
)

webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("id", String(32), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("kinds", String(500)),
    Column("since_outbox_id", Integer, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("disabled_at", Instant),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("outbox_id", Integer, ForeignKey("outbox.id"), nullable=False),
    *delivery_columns(),
    UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_deliveries_endpoint_outbox"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)
