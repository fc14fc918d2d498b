"""The schema: SQLAlchemy Core tables for SQLite (embedded default) and PostgreSQL.

What is stored, and why:
- `inputs` and `usage_events` are the source of truth: an account's balances are
  a pure function of them (docs/semantics.md, "A line's state
  is a fold"), so a replay can always rebuild the rest.
  `usage_events.event_id` is unique: the same event twice is counted once.
- `buckets`, `counters` and the cursor columns of `accounts` are the materialized
  state of each account's book, so an in-order event costs one small transaction.
- `ledger_entries` is append-only: corrections are new rows, never updates.
- The bulk tables (`usage_events`, `ledger_entries`, `buckets`, `counters`, and the
  outbox of store.webhook_tables) have no foreign key on `account_id` (migration
  0019): no account is ever deleted or renumbered, and every writer takes the id
  from a `lines` or `accounts` row it read in the same transaction, so the per-row
  check, the largest single cost of a bulk write, never caught anything.
  `lines.account_id`, `inputs.account_id` and every other foreign key stay
  (docs/architecture.md, "Referential integrity").

Instants are stored as timezone-aware timestamps (UTC); amounts as BigInteger.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

from carryover.domain.bounds import MAX_TOTAL

BIG_TOTAL = MAX_TOTAL // 2  # counters past this are indexed (ix_counters_big)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})



class UTCInstant(TypeDecorator):
    """An aware instant, stored as UTC and read back aware.

    SQLite keeps datetimes as text without an offset: an aware local time would be
    stored as its wall clock and read back hours off. Converting on the way in (and
    refusing naive values) makes that impossible on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Instant = UTCInstant()


def delivery_columns() -> list[Column]:
    """The state of something sent with retries (a webhook delivery, a re-authorization):
    pending, delivered, or dead after its last attempt; its attempts; when the next is
    due (or, while one runs, until when it is leased); the last failure; when it went."""
    return [Column("status", String(16), nullable=False),  # pending | delivered | dead
            Column("attempts", Integer, nullable=False),
            Column("next_attempt_at", Instant, nullable=False),
            Column("last_error", Text),
            Column("delivered_at", Instant)]

plans = Table(
    "plans", metadata,
    Column("id", String(120), primary_key=True),
    Column("body", JSON, nullable=False),  # the plan-file mapping, re-validated on load
    Column("source", String(20), nullable=False),  # preset | file
    Column("loaded_at", Instant, nullable=False),
)

# A plan id's versions (docs/semantics.md, "Plan versions"): immutable once written.
# `plans` above is the series (what lines refer to) with its latest body; a version is
# in force from `effective_at`, or from each account's first cycle boundary after
# `next_boundary_after`, or (both null: version 1) always.
plan_versions = Table(
    "plan_versions", metadata,
    Column("plan_id", String(120), ForeignKey("plans.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("source", String(20), nullable=False),  # preset | file
    Column("recorded_at", Instant, nullable=False),
    Column("effective_at", Instant),
    Column("next_boundary_after", Instant),
)

accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("cycle_day", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("grace_seconds", Integer, nullable=False, default=48 * 3600),
    Column("created_at", Instant, nullable=False),
    # The family pool is the account's own "line" in the book (owner "pool").
    Column("pool_plan_id", String(120), ForeignKey("plans.id")),
    Column("pool_pending_plan", String(120)),
    Column("pool_opened_at", Instant),
    # The book's cursor: where its fold stands.
    Column("cycle_start", Instant),
    Column("cycle_end", Instant),
    Column("until", Instant),
    Column("segment_start", Instant),
    Column("last_key", JSON),
    Column("version", Integer, nullable=False, default=0),
)

lines = Table(
    "lines", metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("msisdn", String(20), unique=True),
    Column("imsi", String(15), unique=True),
    Column("opened_at", Instant, nullable=False),
    Column("plan_id", String(120), ForeignKey("plans.id")),
    Column("member", Boolean, nullable=False, default=False),
    Column("pending_plan", String(120)),
    Column("limits", JSON, nullable=False, default=dict),
    # The alert thresholds the subscriber picked (percentages); null: the defaults.
    Column("alert_thresholds", JSON),
)

inputs = Table(
    "inputs", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("input_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("line", String(64)),
    Column("at", Instant, nullable=False),
    Column("body", JSON, nullable=False),
    # Who gave the input (an API key id, or "cli") and when it was recorded; null for
    # inputs stored before either was kept. An input whose `at` is before `recorded_at`
    # was back-dated: only an operator may do that (docs/security.md).
    Column("actor", String(64)),
    Column("recorded_at", Instant),
    UniqueConstraint("account_id", "input_id", name="uq_inputs_account_input"),
)

usage_events = Table(
    "usage_events", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("account_id", Integer, nullable=False),
    Column("line", String(64), nullable=False),
    Column("at", Instant, nullable=False),
    Column("received_at", Instant),
    Column("effective_at", Instant, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("unit", String(8), nullable=False),
    Column("rating_group", String(64)),
    Column("late", Boolean, nullable=False, default=False),
    Index("ix_usage_account_effective", "account_id", "effective_at"),
)

buckets = Table(
    "buckets", metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(300), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("granted", BigInteger),  # null: unlimited
    Column("remaining", BigInteger),
    Column("valid_from", Instant, nullable=False),
    Column("valid_until", Instant),
    Column("priority", Integer, nullable=False),
    Column("rollable", Boolean, nullable=False),
    Column("origin", String(300)),
    Column("closed", Boolean, nullable=False, default=False),
    Index("ix_buckets_live", "account_id", "closed"),
)

ledger_entries = Table(
    "ledger_entries", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("account_id", Integer, nullable=False),
    # Bitemporal (domain/ledger.py): the instant of the fold the entry belongs to, and
    # when the engine booked it. A correction is a new row, recorded now, effective in
    # the cycle it corrects.
    Column("effective_at", Instant, nullable=False),
    Column("recorded_at", Instant, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("bucket_id", String(300)),
    Column("owner", String(64)),
    Column("line", String(64)),
    Column("ref", String(200), nullable=False),
    Column("note", Text, nullable=False, default=""),
    # The one secondary index: every read of the ledger is of one account's entries
    # (or a scan of all); none looks a bucket up, so (account_id, bucket_id) was
    # dropped in migration 0018 (an ingest writes every entry into each index).
    Index("ix_ledger_account_effective", "account_id", "effective_at"),
)

counters = Table(
    "counters", metadata,
    Column("account_id", Integer, primary_key=True),
    Column("cycle_start", String(40), primary_key=True),
    Column("line", String(64), primary_key=True),
    Column("unit", String(8), primary_key=True),
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
    # The few totals past half their bound (domain/bounds.py): ingest looks them up
    # before adding a chunk, without reading every counter (services/ingest/total_bounds.py).
    Index("ix_counters_big", "value", sqlite_where=text(f"value > {BIG_TOTAL}"),
          postgresql_where=text(f"value > {BIG_TOTAL}")),
)
