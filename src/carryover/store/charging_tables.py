"""Real-time charging tables: Nchf charging sessions and the quota they hold.

- `charging_sessions`: one row per chargingDataRef the CHF handed out on
  create; `sequence` is the last invocationSequenceNumber answered and
  `last_result` that answer's grants and `last_digest` what that request said
  (services.charging.model.ChargingRequest.digest), so a retransmitted request
  gets the same answer instead of a second grant, and the next report of an SMF
  that numbers every request alike is told from it. `create_key` identifies the create that
  opened it (services.charging.model.create_key): unique among open sessions, so
  a create sent twice, even to two workers at once, opens one session.
  `released_at` is set on release.
- `quota_holds`: bytes granted to a session for a rating group and not yet
  reported, released or expired (`expires_at` = grant instant + validityTime +
  a margin). One row per (session, rating group); each update replaces it.
  Used units are not here: they are ordinary rows of `usage_events`.
- `reauthorizations`: re-authorization requests (ChargingNotifyRequest) the CHF
  owes the `notify_uri` a session's create gave, written in the transaction
  of the change that moved the line's standing (domain/standing.py) and
  delivered by services.charging.reauthorization_delivery with retries; one row
  per change and session.

They live on the same MetaData as carryover.store.tables; migration 0007 creates them,
0016 adds `create_key`, `last_digest`, `notify_uri` and `reauthorizations`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    text,
)

from carryover.store.tables import Instant, delivery_columns, metadata

WATCHED = "released_at IS NULL AND notify_uri IS NOT NULL"

charging_sessions = Table(
    "charging_sessions", metadata,
    Column("ref", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("line", String(64), nullable=False),
    Column("subscriber", String(100), nullable=False),
    Column("opened_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("last_result", JSON, nullable=False),
    Column("released_at", Instant),
    Column("create_key", String(64)),
    Column("last_digest", String(64)),
    Column("notify_uri", String(2000)),
    Index("ux_charging_sessions_open_create", "create_key", unique=True,
          postgresql_where=text("released_at IS NULL"),
          sqlite_where=text("released_at IS NULL")),
    # Every batch asks which open sessions of its accounts gave a notifyUri: only those.
    Index("ix_charging_sessions_watched", "account_id",
          postgresql_where=text(WATCHED), sqlite_where=text(WATCHED)),
)

quota_holds = Table(
    "quota_holds", metadata,
    Column("ref", String(64), ForeignKey("charging_sessions.ref"), primary_key=True),
    Column("rating_group", BigInteger, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("line", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("granted_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Index("ix_quota_holds_account", "account_id", "expires_at"),
)

reauthorizations = Table(
    "reauthorizations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(64), ForeignKey("charging_sessions.ref"), nullable=False),
    Column("notify_uri", String(2000), nullable=False),
    Column("rating_groups", JSON, nullable=False),  # sorted list of rating group numbers
    Column("reason", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
    *delivery_columns(),
    Index("ix_reauthorizations_due", "status", "next_attempt_at"),
)
