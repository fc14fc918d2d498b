"""The eSIM repository: profiles, orders and history rows in, plain rows out.

Picking a profile for an order locks it (FOR UPDATE SKIP LOCKED on PostgreSQL,
so two concurrent orders take two different profiles; on SQLite BEGIN IMMEDIATE
already serializes writers) and skips profiles another open order holds.
History rows are append-only; a row with a `dedupe_key` already stored is not
stored again, which is how a repeated notification changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from carryover.store.esim_tables import esim_events, esim_orders, esim_profiles
from carryover.store.tables import accounts, lines

_OPEN = esim_orders.c.closed_at.is_(None)


class EsimRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ---- profiles -----------------------------------------------------------------
    def add_profiles(self, rows: list[dict[str, Any]], at: datetime) -> None:
        if rows:
            self.conn.execute(insert(esim_profiles), [
                {**row, "state": row.get("state", "available"), "imported_at": at,
                 "updated_at": at} for row in rows])

    def known(self, iccids: Iterable[str], imsis: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of these ICCIDs and IMSIs the inventory already holds."""
        iccids, imsis = list(iccids), list(imsis)
        found_iccids = set(self.conn.execute(select(esim_profiles.c.iccid).where(
            esim_profiles.c.iccid.in_(iccids))).scalars()) if iccids else set()
        found_imsis = set(self.conn.execute(select(esim_profiles.c.imsi).where(
            esim_profiles.c.imsi.in_(imsis))).scalars()) if imsis else set()
        return found_iccids, found_imsis

    def profile(self, iccid: str, lock: bool = False) -> Any:
        query = select(esim_profiles).where(esim_profiles.c.iccid == iccid)
        if lock and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return self.conn.execute(query).first()

    def profiles(self, state: str | None = None) -> list[Any]:
        query = select(esim_profiles).order_by(esim_profiles.c.profile_type,
                                               esim_profiles.c.iccid)
        if state is not None:
            query = query.where(esim_profiles.c.state == state)
        return list(self.conn.execute(query))

    def counts(self) -> dict[str, dict[str, int]]:
        """Profiles per type and state; `available` counts only those no open order holds."""
        p = esim_profiles.c
        held = exists().where(and_(esim_orders.c.iccid == p.iccid, _OPEN))
        rows = self.conn.execute(select(p.profile_type, p.state, held.label("held"),
                                        func.count()).group_by(p.profile_type, p.state, "held"))
        out: dict[str, dict[str, int]] = {}
        for profile_type, state, is_held, count in rows:
            state_name = "reserved" if state == "available" and is_held else state
            by_state = out.setdefault(profile_type, {})
            by_state[state_name] = by_state.get(state_name, 0) + count
        return out

    def pick_available(self, profile_type: str | None = None,
                       exclude: str | None = None) -> Any:
        """The oldest available profile (of a type) no open order holds, locked for this tx."""
        p = esim_profiles.c
        held = exists().where(and_(esim_orders.c.iccid == p.iccid, _OPEN))
        query = select(esim_profiles).where(and_(p.state == "available", ~held))
        if profile_type is not None:
            query = query.where(p.profile_type == profile_type)
        if exclude is not None:
            query = query.where(p.iccid != exclude)
        query = query.order_by(p.imported_at, p.iccid).limit(1)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=esim_profiles)
        return self.conn.execute(query).first()

    def available_types(self) -> list[str]:
        p = esim_profiles.c
        held = exists().where(and_(esim_orders.c.iccid == p.iccid, _OPEN))
        return list(self.conn.execute(select(p.profile_type).where(
            and_(p.state == "available", ~held)).distinct().order_by(p.profile_type)).scalars())

    def set_profile(self, iccid: str, at: datetime, **values: Any) -> None:
        self.conn.execute(update(esim_profiles).where(esim_profiles.c.iccid == iccid)
                          .values(updated_at=at, **values))

    # ---- orders -------------------------------------------------------------------
    def create_order(self, line_id: str, iccid: str, eid: str | None, at: datetime) -> int:
        result = self.conn.execute(insert(esim_orders).values(
            line_id=line_id, iccid=iccid, eid=eid, created_at=at))
        return int(result.inserted_primary_key[0])

    def order(self, order_id: int) -> Any:
        return self.conn.execute(select(esim_orders).where(esim_orders.c.id == order_id)).first()

    def open_order(self, line_id: str) -> Any:
        return self.conn.execute(select(esim_orders).where(and_(
            esim_orders.c.line_id == line_id, _OPEN)).order_by(esim_orders.c.id.desc())).first()

    def open_order_for(self, iccid: str) -> Any:
        return self.conn.execute(select(esim_orders).where(and_(
            esim_orders.c.iccid == iccid, _OPEN)).order_by(esim_orders.c.id.desc())).first()

    def orders(self, line_id: str | None = None, iccid: str | None = None) -> list[Any]:
        query = select(esim_orders).order_by(esim_orders.c.id)
        if line_id is not None:
            query = query.where(esim_orders.c.line_id == line_id)
        if iccid is not None:
            query = query.where(esim_orders.c.iccid == iccid)
        return list(self.conn.execute(query))

    def update_order(self, order_id: int, **values: Any) -> None:
        self.conn.execute(update(esim_orders).where(esim_orders.c.id == order_id).values(**values))

    def close_order(self, order_id: int, at: datetime, reason: str) -> None:
        self.update_order(order_id, closed_at=at, closed_reason=reason)

    # ---- history ------------------------------------------------------------------
    def add_event(self, iccid: str, at: datetime, source: str, kind: str,
                  from_state: str | None = None, to_state: str | None = None,
                  detail: dict | None = None, dedupe_key: str | None = None) -> bool:
        """Append a history row; False (and nothing stored) when `dedupe_key` is known."""
        values = {"iccid": iccid, "at": at, "source": source, "kind": kind,
                  "from_state": from_state, "to_state": to_state, "detail": detail or {},
                  "dedupe_key": dedupe_key}
        if dedupe_key is None:
            self.conn.execute(insert(esim_events).values(**values))
            return True
        if self.seen(dedupe_key):
            return False
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(esim_events).values(**values))
        except IntegrityError:  # a concurrent delivery of the same notification won
            return False
        return True

    def seen(self, dedupe_key: str) -> bool:
        return self.conn.execute(select(esim_events.c.id).where(
            esim_events.c.dedupe_key == dedupe_key)).first() is not None

    def event_with_key(self, dedupe_key: str) -> Any:
        """The history row stored under `dedupe_key`, or None."""
        return self.conn.execute(select(esim_events).where(
            esim_events.c.dedupe_key == dedupe_key)).first()

    def events(self, iccid: str) -> list[Any]:
        return list(self.conn.execute(select(esim_events).where(
            esim_events.c.iccid == iccid).order_by(esim_events.c.id)))

    # ---- the line a notice is about -----------------------------------------------
    def line_account(self, line_id: str) -> Any:
        """The line's MSISDN with its account's id, name and calendar, or None."""
        return self.conn.execute(select(
            lines.c.msisdn, accounts.c.id, accounts.c.name, accounts.c.cycle_start,
            accounts.c.cycle_day, accounts.c.timezone).join(
            accounts, accounts.c.id == lines.c.account_id).where(lines.c.id == line_id)).first()
