"""API tables: the keys that may call the HTTP API, and the responses idempotency replays.

- `api_keys`: one row per key. The secret is never stored, only the SHA-256 of
  the token (a 256-bit random token needs no salt or slow hash: it cannot be
  guessed, only stolen, and the hash is useless to a thief). `role` is operator
  or subscriber; a subscriber key names its `account_id`. Revoking sets
  `revoked_at`; the row stays for the audit trail.
- `idempotency_keys`: the first response to a creating POST sent with an
  `Idempotency-Key`, keyed by (API key, `route_hash`, key), with the hash of the
  request body so a reused key with another body is refused. `route` is the
  method and path as requested ("POST /v1/lines/a1/top-ups"): the client chooses
  the path and its length, so it is kept as text of any length and identified by
  `route_hash`, the SHA-256 hex of its UTF-8 (services.access.idempotency.route_hash);
  `key` is the header's value, at most 200 characters (api.rest.idempotent).
- `api_rate_limits`: the rate limit state of each key when it is shared by
  every worker process (setting `api_rate_limit_store`): the GCRA theoretical
  arrival time `tat` in integer microseconds since the Unix epoch, and whether
  the last request was allowed (carryover.store.rate_limits).

They live on the same MetaData as carryover.store.tables; migration 0003 creates the
first two, 0006 the rate limits; 0017 keys idempotency_keys by `route_hash`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from carryover.store.tables import Instant, metadata

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # operator | subscriber
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("label", String(200)),
    Column("created_at", Instant, nullable=False),
    Column("revoked_at", Instant),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("api_key_id", String(32), ForeignKey("api_keys.id"), primary_key=True),
    Column("route_hash", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("route", Text, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Instant, nullable=False),
)

# No foreign key: a row is a counter keyed by whatever the limiter limits (today an
# API key id), written on every request, and a revoked key's row is harmless.
api_rate_limits = Table(
    "api_rate_limits", metadata,
    Column("key_id", String(64), primary_key=True),
    Column("tat", BigInteger, nullable=False),  # microseconds since the Unix epoch
    Column("allowed", Boolean, nullable=False),
)
