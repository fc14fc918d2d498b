"""The API's repositories: keys, rate-limit state and stored idempotent responses in,
plain rows out (KeyRepository, IdempotencyRepository), and the directory of plans,
accounts and lines the API lists and reports read across accounts (ApiRepository,
`uow.directory`).

`KeyRepository.admit` is the shared rate limit's one statement (the rate-limit
service explains its GCRA): INSERT ... ON CONFLICT (key_id) DO UPDATE SET tat =
CASE ... END RETURNING, so the database serializes the requests of a key across
processes and hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from carryover.store.api_tables import api_keys, api_rate_limits, idempotency_keys
from carryover.store.tables import accounts, ledger_entries, lines, plans

_KEY_COLUMNS = (api_keys.c.id, api_keys.c.role, api_keys.c.account_id, api_keys.c.label,
                api_keys.c.created_at, api_keys.c.revoked_at,
                accounts.c.name.label("account_name"))
_KEYS = select(*_KEY_COLUMNS).select_from(
    api_keys.outerjoin(accounts, accounts.c.id == api_keys.c.account_id))


class KeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_key(self, **values: Any) -> None:
        self.conn.execute(insert(api_keys).values(**values))

    def all_keys(self) -> list[Any]:
        return list(self.conn.execute(_KEYS.order_by(api_keys.c.created_at, api_keys.c.id)))

    def key(self, key_id: str) -> Any:
        return self.conn.execute(_KEYS.where(api_keys.c.id == key_id)).first()

    def key_by_hash(self, token_hash: str) -> Any:
        return self.conn.execute(select(*_KEY_COLUMNS, api_keys.c.token_hash).select_from(
            api_keys.outerjoin(accounts, accounts.c.id == api_keys.c.account_id)).where(
            api_keys.c.token_hash == token_hash)).first()

    def revoke(self, key_id: str, at: datetime) -> None:
        self.conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=at))

    def admit(self, key: str, now: int, interval: int, limit: int) -> tuple[int, bool]:
        """Count a request of `key` at `now` (integer microseconds): the key's stored
        `tat` afterwards and whether the request fits the tolerance `limit`."""
        tat, allowed = self.conn.execute(_admit(self.conn.dialect.name), {
            "key": key, "now": now, "interval": interval, "limit": limit}).one()
        return int(tat), bool(allowed)


@cache
def _admit(dialect: str) -> Insert:
    # Built once per dialect: the statement's cache key is memoized on the object.
    t = api_rate_limits.c
    now = bindparam("now", type_=BigInteger)
    step = bindparam("interval", type_=BigInteger)
    limit = bindparam("limit", type_=BigInteger)
    # On conflict, the columns name the stored row (before the update) in both dialects.
    start = case((t.tat > now, t.tat), else_=now)  # max(tat, now)
    fits = start + step - now <= limit
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert_(api_rate_limits)
            .values(key_id=bindparam("key"), tat=now + step, allowed=True)
            .on_conflict_do_update(index_elements=["key_id"], set_={
                "tat": case((fits, start + step), else_=t.tat),
                "allowed": fits})
            .returning(t.tat, t.allowed))


class IdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def stored_response(self, api_key_id: str, route_hash: str, key: str) -> Any:
        return self.conn.execute(select(idempotency_keys).where(
            *_identity(api_key_id, route_hash, key))).first()

    def claim(self, **values: Any) -> bool:
        """Insert the key's row (status 0: in progress); False when it is already there."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(idempotency_keys).values(status=0, body={}, **values))
        except IntegrityError:
            return False
        return True

    def complete(self, api_key_id: str, route_hash: str, key: str, status: int,
                 body: Any) -> None:
        self.conn.execute(update(idempotency_keys).where(
            *_identity(api_key_id, route_hash, key)).values(status=status, body=body))

    def release(self, api_key_id: str, route_hash: str, key: str) -> None:
        self.conn.execute(delete(idempotency_keys).where(
            *_identity(api_key_id, route_hash, key)))


def _identity(api_key_id: str, route_hash: str, key: str) -> tuple:
    c = idempotency_keys.c
    return c.api_key_id == api_key_id, c.route_hash == route_hash, c.key == key


class ApiRepository:
    """The pages the API lists, and reads across all accounts."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def lines_page(self, account_id: int | None, after: str | None, limit: int,
                   plan_id: str | None = None) -> list[Any]:
        query = select(lines, accounts.c.name.label("account_name")).join(
            accounts, accounts.c.id == lines.c.account_id)
        if account_id is not None:
            query = query.where(lines.c.account_id == account_id)
        if plan_id is not None:
            query = query.where(lines.c.plan_id == plan_id)
        if after is not None:
            query = query.where(lines.c.id > after)
        return list(self.conn.execute(query.order_by(lines.c.id).limit(limit)))

    def accounts_page(self, after: str | None, limit: int, timezone: str | None = None,
                      family: bool | None = None) -> list[Any]:
        """Accounts by name after `after`, each with its number of lines."""
        count = (select(func.count()).select_from(lines)
                 .where(lines.c.account_id == accounts.c.id).scalar_subquery())
        query = select(accounts, count.label("line_count"))
        if after is not None:
            query = query.where(accounts.c.name > after)
        if timezone is not None:
            query = query.where(accounts.c.timezone == timezone)
        if family is not None:
            query = query.where(accounts.c.pool_plan_id.is_not(None) if family
                                else accounts.c.pool_plan_id.is_(None))
        return list(self.conn.execute(query.order_by(accounts.c.name).limit(limit)))

    def plans_page(self, after: str | None, limit: int) -> list[Any]:
        query = select(plans)
        if after is not None:
            query = query.where(plans.c.id > after)
        return list(self.conn.execute(query.order_by(plans.c.id).limit(limit)))

    def plan(self, plan_id: str) -> Any:
        return self.conn.execute(select(plans).where(plans.c.id == plan_id)).first()

    def line_plans(self) -> dict[str, str | None]:
        """Every line's plan: line id -> plan id (None for a pool member)."""
        return dict(self.conn.execute(select(lines.c.id, lines.c.plan_id)).all())

    def pool_plans(self) -> dict[int, str | None]:
        """Every account's pool plan: account id -> plan id (None: no family pool)."""
        return dict(self.conn.execute(select(accounts.c.id, accounts.c.pool_plan_id)).all())

    def entries_of_kinds(self, kinds: Sequence[str]) -> list[Any]:
        """(account_id, owner, kind, amount, bucket_id) of every entry of these kinds."""
        c = ledger_entries.c
        return list(self.conn.execute(
            select(c.account_id, c.owner, c.kind, c.amount, c.bucket_id)
            .where(c.kind.in_(list(kinds)))))
