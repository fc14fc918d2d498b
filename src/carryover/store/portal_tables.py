"""Portal tables: one-time sign-in links and the sessions of the subscriber portal.

- `portal_links`: a link `carryover portal link LINE` printed. Only the SHA-256 of
  its random token is stored (as for API keys: a 256-bit token needs no slow
  hash); `used_at` is set by the one sign-in it allows, `expires_at` ends it
  unused.
- `portal_sessions`: a signed-in browser. Again only the hash of the cookie's
  token; `account_id` is the one account the session may see, `line_id` the
  line it opened on; `csrf` is the token every form of the session carries;
  `ended_at` is set by signing out. `via` says how it began: `link:<id>` or
  `key:<api key id>`.

They live on the same MetaData as carryover.store.tables; migration 0014 creates them.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from carryover.store.tables import Instant, metadata

portal_links = Table(
    "portal_links", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("line_id", String(64), ForeignKey("lines.id"), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("used_at", Instant),
)

portal_sessions = Table(
    "portal_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("line_id", String(64), ForeignKey("lines.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("via", String(64), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("ended_at", Instant),
)
