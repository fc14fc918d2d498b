"""eSIM tables: the operator's profile inventory, its orders and every profile's history.

- `esim_profiles`: one row per ICCID the operator owns (imported from the
  vendor's file), with the state the SM-DP+ last reported or confirmed.
- `esim_orders`: one row per download ordered for a line. A line's current
  order is its newest open one; a move or a cancel closes it. The matching id
  and the SM-DP+ address rebuild the activation code; a confirmation code is
  kept only as a salted hash (`cc_hash`).
- `esim_events`: append-only history of every profile (ES2+ calls made, notifications
  received). `dedupe_key` is unique: a notification delivered twice is stored once.

They live on the same MetaData as carryover.store.tables, so Alembic and the
schema test see one schema; migration 0002 creates them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text

from carryover.store.tables import Instant, metadata

esim_profiles = Table(
    "esim_profiles", metadata,
    Column("iccid", String(20), primary_key=True),
    Column("imsi", String(15), unique=True),
    Column("profile_type", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("eid", String(32)),
    Column("imported_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_esim_profiles_type_state", "profile_type", "state"),
)

esim_orders = Table(
    "esim_orders", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("line_id", String(64), ForeignKey("lines.id"), nullable=False, index=True),
    Column("iccid", String(20), ForeignKey("esim_profiles.iccid"), nullable=False, index=True),
    Column("eid", String(32)),
    Column("matching_id", String(255)),
    Column("smdp_address", String(253)),
    Column("cc_hash", String(200)),
    Column("created_at", Instant, nullable=False),
    Column("closed_at", Instant),
    Column("closed_reason", Text),
)

esim_events = Table(
    "esim_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key: a refused notification about an ICCID the inventory does not hold
    # is kept here too, so the operator can see what an SM-DP+ said about it.
    Column("iccid", String(20), nullable=False),
    Column("at", Instant, nullable=False),
    Column("source", String(16), nullable=False),  # es2plus | notification | operator
    Column("kind", String(40), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16)),
    Column("detail", JSON, nullable=False, default=dict),
    Column("dedupe_key", String(64), unique=True),
    Index("ix_esim_events_iccid_at", "iccid", "at"),
)
