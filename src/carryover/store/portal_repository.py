"""The portal repository: sign-in links and sessions in, plain rows out (uow.portal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from carryover.store.portal_tables import portal_links, portal_sessions


class PortalRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_link(self, token_hash: str, line_id: str, at: datetime, expires_at: datetime) -> int:
        return self.conn.execute(insert(portal_links).values(
            token_hash=token_hash, line_id=line_id, created_at=at,
            expires_at=expires_at)).inserted_primary_key[0]

    def link(self, token_hash: str) -> Any:
        return self.conn.execute(select(portal_links).where(
            portal_links.c.token_hash == token_hash)).first()

    def use_link(self, link_id: int, at: datetime) -> bool:
        """Mark the link used; False when another sign-in used it first."""
        done = self.conn.execute(update(portal_links).where(
            portal_links.c.id == link_id, portal_links.c.used_at.is_(None)).values(used_at=at))
        return done.rowcount == 1

    def add_session(self, token_hash: str, account_id: int, line_id: str, csrf: str,
                    via: str, at: datetime, expires_at: datetime) -> None:
        self.conn.execute(insert(portal_sessions).values(
            token_hash=token_hash, account_id=account_id, line_id=line_id, csrf=csrf, via=via,
            created_at=at, expires_at=expires_at))

    def session(self, token_hash: str) -> Any:
        return self.conn.execute(select(portal_sessions).where(
            portal_sessions.c.token_hash == token_hash)).first()

    def end_session(self, token_hash: str, at: datetime) -> None:
        self.conn.execute(update(portal_sessions).where(
            portal_sessions.c.token_hash == token_hash,
            portal_sessions.c.ended_at.is_(None)).values(ended_at=at))
