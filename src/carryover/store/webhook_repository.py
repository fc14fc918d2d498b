"""Webhook endpoints and deliveries: the reads and writes of services.notify.webhooks
and services.notify.delivery (tables in store.webhook_tables).

- An endpoint's `kinds` is stored comma-wrapped (",usage_80,throttled,"), so
  whether it wants a kind is one LIKE; `since_outbox_id` is the last outbox row
  when it was added (older rows are not sent to it).
- `fan_out` makes one delivery row per (enabled endpoint, outbox row it wants)
  that has none yet, set-based (INSERT ... SELECT ... ON CONFLICT DO NOTHING, so
  concurrent workers cannot double it).
- `claim` leases one due delivery of an endpoint: a compare-and-set of its
  `next_attempt_at`, after a FOR UPDATE SKIP LOCKED read on PostgreSQL (SQLite's
  writers are serialised); `record` stores an outcome only under that lease.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from carryover.store.webhook_tables import outbox, webhook_deliveries, webhook_endpoints

_o, _e, _d = outbox.c, webhook_endpoints.c, webhook_deliveries.c


def _unfanned(*columns: Any) -> Any:
    """SELECT `columns` over (enabled endpoint, outbox row) pairs that have no delivery yet."""
    wanted = _e.kinds.is_(None) | _e.kinds.like(literal("%,") + _o.kind + literal(",%"))
    already = exists().where(and_(_d.endpoint_id == _e.id, _d.outbox_id == _o.id))
    return (select(*columns)
            .select_from(outbox.join(webhook_endpoints, _o.id > _e.since_outbox_id))
            .where(_e.disabled_at.is_(None), wanted, ~already))


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's MIN loses the column type
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class WebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- endpoints
    def last_outbox_id(self) -> int:
        """The id of the newest outbox row (0 when none)."""
        return int(self.conn.execute(select(func.coalesce(func.max(_o.id), 0))).scalar_one())

    def add_endpoint(self, endpoint_id: str, url: str, secret: str, kinds: list[str] | None,
                     since_outbox_id: int, at: datetime) -> None:
        """Store an endpoint that wants `kinds` (None: every kind) of the outbox rows after
        `since_outbox_id`."""
        self.conn.execute(insert(webhook_endpoints).values(
            id=endpoint_id, url=url, secret=secret, since_outbox_id=since_outbox_id,
            created_at=at, kinds=f",{','.join(sorted(set(kinds)))}," if kinds else None))

    def endpoints(self) -> list[Any]:
        """Every endpoint (disabled ones too), in the order they were added."""
        return self.conn.execute(
            select(webhook_endpoints).order_by(_e.created_at, _e.id)).all()

    def endpoints_after(self, after: str | None, limit: int) -> list[Any]:
        """Up to `limit` endpoints by id, after `after` (None: from the first)."""
        query = select(webhook_endpoints).order_by(_e.id).limit(limit)
        if after is not None:
            query = query.where(_e.id > after)
        return self.conn.execute(query).all()

    def endpoint(self, endpoint_id: str) -> Any:
        """The endpoint's row, or None."""
        return self.conn.execute(
            select(webhook_endpoints).where(_e.id == endpoint_id)).first()

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> None:
        self.conn.execute(update(webhook_endpoints).where(_e.id == endpoint_id)
                          .values(disabled_at=at))

    def delivery_counts(self, endpoint_ids: list[str]) -> dict[str, dict[str, int]]:
        """Endpoint id -> status -> how many of its deliveries have it."""
        counts: dict[str, dict[str, int]] = {}
        for endpoint, status, n in self.conn.execute(
                select(_d.endpoint_id, _d.status, func.count())
                .where(_d.endpoint_id.in_(endpoint_ids))
                .group_by(_d.endpoint_id, _d.status)):
            counts.setdefault(endpoint, {})[status] = int(n)
        return counts

    # -- deliveries
    def fan_out(self, at: datetime) -> None:
        """One pending delivery, due at `at`, per (enabled endpoint, outbox row it wants)
        that has none yet."""
        source = _unfanned(_e.id, _o.id, literal("pending"), literal(0),
                           literal(at, outbox.c.at.type))
        dialect_insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        self.conn.execute(dialect_insert(webhook_deliveries).from_select(
            ["endpoint_id", "outbox_id", "status", "attempts", "next_attempt_at"], source)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "outbox_id"]))

    def due_endpoints(self, now: datetime) -> list[str]:
        """The enabled endpoints with pending deliveries due at `now`, by id."""
        return list(self.conn.execute(
            select(_d.endpoint_id).distinct()
            .join(webhook_endpoints, _e.id == _d.endpoint_id)
            .where(_d.status == "pending", _d.next_attempt_at <= now, _e.disabled_at.is_(None))
            .order_by(_d.endpoint_id)).scalars())

    def claim(self, endpoint_id: str, now: datetime, until: datetime) -> Any:
        """Lease the endpoint's first delivery due at `now` until `until`: its row (id,
        attempts, outbox_id, payload, url, secret, disabled_at), or None when none is
        due or another worker took it first."""
        due = (select(_d.id, _d.attempts).where(_d.endpoint_id == endpoint_id,
                                                _d.status == "pending", _d.next_attempt_at <= now)
               .order_by(_d.id).limit(1))
        if self.conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        row = self.conn.execute(due).first()
        if row is None:
            return None
        taken = self.conn.execute(
            update(webhook_deliveries)
            .where(_d.id == row.id, _d.status == "pending", _d.next_attempt_at <= now)
            .values(next_attempt_at=until)).rowcount
        if taken != 1:
            return None
        return self.conn.execute(
            select(_d.id, _d.attempts, _d.outbox_id, _o.payload, _e.url, _e.secret,
                   _e.disabled_at)
            .join(outbox, _o.id == _d.outbox_id)
            .join(webhook_endpoints, _e.id == _d.endpoint_id)
            .where(_d.id == row.id)).one()

    def record(self, delivery_id: int, attempts: int, lease_until: datetime,
               values: dict) -> bool:
        """Set `values` on the delivery if it is still pending under the lease taken with
        `attempts` until `lease_until`; whether it was."""
        return self.conn.execute(
            update(webhook_deliveries)
            .where(_d.id == delivery_id, _d.status == "pending", _d.attempts == attempts,
                   _d.next_attempt_at == lease_until)
            .values(**values)).rowcount == 1

    def dead_letters(self, after: int | None, limit: int | None) -> list[Any]:
        """Dead deliveries by id (after `after`, at most `limit`), with the endpoint's url
        and the notification's kind and line."""
        query = (select(_d.id, _d.endpoint_id, _d.outbox_id, _d.attempts, _d.last_error,
                        _e.url, _o.kind, _o.line)
                 .join(outbox, _o.id == _d.outbox_id)
                 .join(webhook_endpoints, _e.id == _d.endpoint_id)
                 .where(_d.status == "dead").order_by(_d.id))
        if after is not None:
            query = query.where(_d.id > after)
        if limit is not None:
            query = query.limit(limit)
        return self.conn.execute(query).all()

    def delivery(self, delivery_id: int) -> Any:
        """The delivery's id and status and its endpoint's disabled_at, or None."""
        return self.conn.execute(
            select(_d.id, _d.status, _e.disabled_at)
            .join(webhook_endpoints, _e.id == _d.endpoint_id)
            .where(_d.id == delivery_id)).first()

    def requeue(self, delivery_id: int, at: datetime) -> None:
        """The delivery pending again from `at`, with no attempts made."""
        self.conn.execute(update(webhook_deliveries).where(_d.id == delivery_id).values(
            status="pending", attempts=0, next_attempt_at=at, delivered_at=None))

    def backlog(self) -> list[tuple[int, datetime | None]]:
        """(count, oldest `outbox.written_at`) of the pending deliveries of enabled
        endpoints, and of the (notification, enabled endpoint that wants it) pairs not
        fanned out yet."""
        fanned = (select(func.count(), func.min(_o.written_at))
                  .select_from(webhook_deliveries.join(outbox, _o.id == _d.outbox_id)
                               .join(webhook_endpoints, _e.id == _d.endpoint_id))
                  .where(_d.status == "pending", _e.disabled_at.is_(None)))
        waiting = _unfanned(func.count(), func.min(_o.written_at))
        return [(int(n), _instant(first))
                for n, first in (self.conn.execute(q).one() for q in (fanned, waiting))]
