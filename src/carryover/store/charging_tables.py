"""Real-time charging tables: Nchf charging sessions and the quota they hold.

- `charging_sessions`: one row per chargingDataRef the CHF handed out on
  create; `sequence` is the last invocationSequenceNumber answered and
  `last_result` that answer's grants, so a retransmitted request gets the same
  answer instead of a second grant. `released_at` is set on release.
- `quota_holds`: bytes granted to a session for a rating group and not yet
  reported, released or expired (`expires_at` = grant instant + validityTime +
  a margin). One row per (session, rating group); each update replaces it.
  Used units are not here: they are ordinary rows of `usage_events`.

They live on the same MetaData as carryover.store.tables; migration 0007 creates them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table

from carryover.store.tables import Instant, metadata

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
