"""API keys: who may call the HTTP API, and on whose behalf.

A key is a random token shown once when it is created; only its SHA-256 is
stored, and a presented token is hashed and compared in constant time. An
operator key may do everything; a subscriber key is bound to one account and
sees only that account and its lines (the API answers 404 for the rest, so a
key cannot even learn what exists elsewhere). A revoked key stops working at
once; its row stays for the record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carryover.services.access.ports import KeysUnit
from carryover.services.errors import NotFound, ServiceError

ROLES = ("operator", "subscriber")
TOKEN_PREFIX = "co_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a valid key."""

    key_id: str
    role: str
    account_id: int | None
    account: str | None

    @property
    def operator(self) -> bool:
        return self.role == "operator"

    @property
    def scope(self) -> int | None:
        """The one account this caller may see, or None for all of them."""
        return None if self.operator else self.account_id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_dict(row: Any) -> dict:
    return {"id": row.id, "role": row.role, "account": row.account_name, "label": row.label,
            "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}


def create_key(uow: KeysUnit, role: str, at: datetime, account: str | None = None,
               label: str | None = None) -> tuple[dict, str]:
    """A new key: its description and the token, which is never available again."""
    if role not in ROLES:
        raise ServiceError(f"role {role!r} is not operator or subscriber")
    if role == "subscriber" and account is None:
        raise ServiceError("a subscriber key needs --account")
    if role == "operator" and account is not None:
        raise ServiceError("an operator key is not bound to an account; drop --account")
    key_id = f"key_{secrets.token_hex(8)}"
    token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    with uow:
        account_id = None
        if account is not None:
            row = uow.accounts.account_by_name(account)
            if row is None:
                raise NotFound(f"unknown account {account!r}")
            account_id = row.id
        repo = uow.keys
        repo.add_key(id=key_id, token_hash=token_hash(token), role=role,
                     account_id=account_id, label=label, created_at=at)
        info = key_dict(repo.key(key_id))
        uow.commit()
    return info, token


def list_keys(uow: KeysUnit) -> list[dict]:
    with uow:
        return [key_dict(row) for row in uow.keys.all_keys()]


def revoke_key(uow: KeysUnit, key_id: str, at: datetime) -> dict:
    with uow:
        repo = uow.keys
        row = repo.key(key_id)
        if row is None:
            raise NotFound(f"unknown API key {key_id!r}")
        if row.revoked_at is None:
            repo.revoke(key_id, at)
        info = key_dict(repo.key(key_id))
        uow.commit()
    return info


class KeyCache:
    """Keys a process checked recently: token hash -> (caller, monotonic expiry).

    Only successful checks are kept (an unknown key is looked up every time), for
    `seconds` each, so a revocation reaches this process within `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._known: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: float) -> Principal | None:
        with self._lock:
            hit = self._known.get(digest)
            if hit is None or hit[1] <= now:
                self._known.pop(digest, None)
                return None
            return hit[0]

    def put(self, digest: str, who: Principal, now: float) -> None:
        with self._lock:
            if len(self._known) > 10_000:  # bounded: forget everything, start again
                self._known.clear()
            self._known[digest] = (who, now + self.seconds)


def remembered(token: str, cache: KeyCache | None) -> Principal | None:
    """The caller of `token` if `cache` checked it within its lifetime (no I/O)."""
    if cache is None or cache.seconds <= 0 or not token.startswith(TOKEN_PREFIX) \
            or len(token) > 200:
        return None
    return cache.get(token_hash(token), time.monotonic())


def authenticate(uow: KeysUnit, token: str, cache: KeyCache | None = None) -> Principal | None:
    """The caller of a presented token, or None (unknown, malformed or revoked).

    With a `cache` (setting api_key_cache_seconds) a key checked within its
    lifetime is not looked up again."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    now = time.monotonic()
    if cache is not None and cache.seconds > 0:
        who = cache.get(digest, now)
        if who is not None:
            return who
        who = _lookup(uow, digest)
        if who is not None:
            cache.put(digest, who, now)
        return who
    return _lookup(uow, digest)


def _lookup(uow: KeysUnit, digest: str) -> Principal | None:
    # A read: on SQLite it must not queue for the write lock behind every writer.
    with uow.reading() as reading:
        row = reading.keys.key_by_hash(digest)
    # The lookup is by hash, so timing says nothing about the token; the constant-time
    # comparison guards against a backend that matched loosely.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at:
        return None
    return Principal(row.id, row.role, row.account_id, row.account_name)
