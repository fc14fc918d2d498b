"""Re-authorizations owed to packet cores: written with the change, delivered later.

A re-authorization is written in the transaction of the change that moved a line's
standing, one per change and session (a core asked twice re-authorizes twice,
harmlessly; merging into a pending one could merge into one being sent). The
delivery loop (services.charging.reauthorization_delivery) claims one due at a time
with a lease: `next_attempt_at` moves past the attempt's cut-off in a compare-and-set
(FOR UPDATE SKIP LOCKED on PostgreSQL), so two loops never send the same request at
once, and the outcome is recorded only under the lease that was taken.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select, update

from carryover.store.charging_tables import reauthorizations
from carryover.store.instants import utc
from carryover.store.many_rows import insert_many

_n = reauthorizations.c


class ReauthorizationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def offer(self, owed: Iterable[dict]) -> None:
        """Re-authorizations (ref, notify_uri, rating_groups, reason, created_at), each a
        new pending one due at once. Never merged into one already pending: that one
        may be on its way (leased), and what it says would then be lost."""
        insert_many(self.conn, reauthorizations, [
            {**n, "status": "pending", "attempts": 0, "next_attempt_at": n["created_at"]}
            for n in sorted(owed, key=lambda n: n["ref"])])

    def due(self, now: datetime, limit: int) -> list[int]:
        """Ids of pending re-authorizations due at `now`, oldest first."""
        return list(self.conn.execute(
            select(_n.id).where(_n.status == "pending", _n.next_attempt_at <= now)
            .order_by(_n.next_attempt_at, _n.id).limit(limit)).scalars())

    def claim(self, notice_id: int, now: datetime, until: datetime) -> Any:
        """Lease a due re-authorization until `until`: its row, or None when another loop has it."""
        query = select(reauthorizations).where(
            _n.id == notice_id, _n.status == "pending", _n.next_attempt_at <= now)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = self.conn.execute(query).first()
        if row is None:
            return None
        self.conn.execute(update(reauthorizations).where(_n.id == notice_id)
                          .values(next_attempt_at=until))
        return row

    def record(self, notice_id: int, attempts: int, lease_until: datetime,
               values: dict) -> bool:
        """Store an attempt's outcome if the lease taken at `attempts` still holds."""
        done = self.conn.execute(update(reauthorizations).where(
            _n.id == notice_id, _n.status == "pending", _n.attempts == attempts,
            _n.next_attempt_at == lease_until).values(**values))
        return done.rowcount == 1

    def of_session(self, ref: str) -> list[Any]:
        """Every re-authorization of a session, oldest first (for status and tests)."""
        return [_utc_row(r) for r in self.conn.execute(
            select(reauthorizations).where(_n.ref == ref).order_by(_n.id))]


def _utc_row(row: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**row._mapping, "created_at": utc(row.created_at),
                              "next_attempt_at": utc(row.next_attempt_at),
                              "delivered_at": utc(row.delivered_at)})
