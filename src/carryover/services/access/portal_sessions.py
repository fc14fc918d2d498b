"""Who may see the subscriber portal: one-time sign-in links, subscriber keys, sessions.

A **link** (`carryover portal link LINE`) carries a random 256-bit token; only its
hash is stored. It signs in once: the first sign-in marks it used (a second,
even at the same instant from another worker, finds it used), and it ends
unused at its expiry. A **subscriber API key** signs in too; an operator key
does not (the portal shows one account; an operator has the CLI and the API).

Either starts a **session**: another random token, kept by the browser in a
cookie and stored here only as a hash, bound to the one account the link's line
or the key belongs to; it ends at its expiry or when signed out. Each session
has its own CSRF token, which every form of the portal carries back.

Every refusal reads the same ("this sign-in link cannot be used"), whether the
token is unknown, used or expired, so a guess learns nothing; the reason is
kept for the operator's log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from carryover.services.access import api_keys
from carryover.services.errors import Forbidden
from carryover.services.ledger.directory import unknown_line

LINK_PREFIX = "cpl_"
SESSION_PREFIX = "cps_"
MAX_TOKEN = 200


class SignInRefused(Forbidden):
    """A link or key that cannot sign in; `reason` is for the log, not the subscriber."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


LINK_REFUSED = "this sign-in link cannot be used: ask for a new one"
KEY_REFUSED = "this key cannot sign in to the portal"


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    account: str
    timezone: str
    line: str  # the line the session opened on
    lines: tuple[str, ...]  # every line of the account, the ones it may see
    csrf: str
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_link(uow, line_ident: str, at: datetime, ttl: timedelta
                ) -> tuple[str, str, datetime, str]:
    """A one-time link for the line: (token, line id, expiry, the account's zone)."""
    with uow:
        row = uow.accounts.find_line(line_ident)
        if row is None:
            raise unknown_line(line_ident)
        token = LINK_PREFIX + secrets.token_urlsafe(32)
        expires = at + ttl
        uow.portal.add_link(_hash(token), row.id, at, expires)
        uow.commit()
        return token, row.id, expires, row.timezone


def sign_in_by_link(uow, token: str, at: datetime, lifetime: timedelta) -> tuple[str, Session]:
    """Use the link (once) and start a session: (session token, session)."""
    with uow:
        link = uow.portal.link(_hash(token)) if _plausible(token, LINK_PREFIX) else None
        if link is None:
            raise SignInRefused(LINK_REFUSED, "unknown link")
        if link.used_at is not None:
            raise SignInRefused(LINK_REFUSED, f"link {link.id} was used at {link.used_at}")
        if at >= link.expires_at:
            raise SignInRefused(LINK_REFUSED, f"link {link.id} expired at {link.expires_at}")
        if not uow.portal.use_link(link.id, at):
            raise SignInRefused(LINK_REFUSED, f"link {link.id} was used by another sign-in")
        row = uow.accounts.find_line(link.line_id)
        started = _start(uow, row.account_id, row.id, f"link:{link.id}", at, lifetime)
        uow.commit()
        return started


def sign_in_by_key(uow, token: str, at: datetime, lifetime: timedelta) -> tuple[str, Session]:
    """Start a session with a subscriber API key: (session token, session)."""
    who = api_keys.authenticate(uow, token)
    if who is None:
        raise SignInRefused(KEY_REFUSED, "unknown or revoked key")
    if who.operator:
        raise SignInRefused(KEY_REFUSED + " (an operator key: use the CLI or the API)",
                            f"operator key {who.key_id}")
    with uow:
        lines = uow.accounts.account_lines(who.account_id)
        if not lines:
            raise SignInRefused(KEY_REFUSED + ": its account has no line yet",
                                f"account {who.account_id} has no line")
        started = _start(uow, who.account_id, lines[0].id, f"key:{who.key_id}", at, lifetime)
        uow.commit()
        return started


def _start(uow, account_id: int, line_id: str, via: str, at: datetime,
           lifetime: timedelta) -> tuple[str, Session]:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    uow.portal.add_session(_hash(token), account_id, line_id, csrf, via, at, at + lifetime)
    return token, _session(uow, uow.portal.session(_hash(token)))


def _session(uow, row) -> Session:
    account = uow.accounts.account(row.account_id)
    lines = tuple(r.id for r in uow.accounts.account_lines(row.account_id))
    return Session(row.account_id, account.name, account.timezone, row.line_id, lines,
                   row.csrf, row.expires_at)


def session(uow, token: str | None, at: datetime) -> Session | None:
    """The live session of a cookie's token, or None (unknown, ended or expired)."""
    if token is None or not _plausible(token, SESSION_PREFIX):
        return None
    with uow.reading() as reading:
        row = reading.portal.session(_hash(token))
        if row is None or row.ended_at is not None or at >= row.expires_at:
            return None
        return _session(reading, row)


def sign_out(uow, token: str | None, at: datetime) -> None:
    """End the session of the token (nothing happens for an unknown one)."""
    if token is None or not _plausible(token, SESSION_PREFIX):
        return
    with uow:
        uow.portal.end_session(_hash(token), at)
        uow.commit()


def csrf_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(),
                                                         presented.encode())


def _plausible(token: str, prefix: str) -> bool:
    return token.startswith(prefix) and len(token) <= MAX_TOKEN
