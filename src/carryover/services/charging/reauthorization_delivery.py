"""Sending the re-authorizations owed to packet cores (TS 32.291 ChargingNotifyRequest).

Each `carryover serve` worker runs this loop (api/worker.py); no lock is needed to
run several: a worker claims one due request at a time with a lease (store:
reauthorization_repository), POSTs it to the session's notifyUri, and records the
outcome under that lease: delivered on a 2xx, else tried again after 1, 2, 4, ...
seconds until `nchf_notify_max_attempts`, then dead. The body is
`{"notificationType": "REAUTHORIZATION", "reauthorizationDetails": [{"ratingGroup":
n}, ...]}`; signed with `nchf_notify_secret` where one is set (the webhook headers,
docs/api.md, "Webhooks"). The target is parsed as a webhook URL is
(services.notify.targets); loopback and private addresses are allowed only with
`nchf_notify_private_targets`, and link-local, unspecified and multicast never.
A failure is recorded in the webhook vocabulary, never the transport's own words.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from carryover.services.notify.delivery import post_once
from carryover.services.unit_of_work import Reading
from carryover.settings import Settings

log = logging.getLogger("carryover.nchf")

# Refused even where private targets are allowed: no packet core listens there, and
# link-local holds the clouds' metadata services (docs/security.md).
NEVER = frozenset({"unspecified", "link-local", "multicast"})
LEASE_MARGIN = 30.0  # seconds of lease beyond an attempt's cut-off, for recording it
PASS_ROWS = 200  # most requests one pass sends
Clock = Callable[[], datetime]


class ReauthorizationStore(Protocol):
    def due(self, now: datetime, limit: int) -> list[int]: ...

    def claim(self, notice_id: int, now: datetime, until: datetime) -> Any: ...

    def record(self, notice_id: int, attempts: int, lease_until: datetime,
               values: dict) -> bool: ...


class ReauthorizationUnit(Reading, Protocol):
    reauthorizations: ReauthorizationStore


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    ref: str
    attempts: int
    lease_until: datetime
    started: float  # time.monotonic() at the claim
    url: str
    rating_groups: list[int]


def body(rating_groups: list[int]) -> dict:
    """The ChargingNotifyRequest asking to re-authorize these rating groups."""
    return {"notificationType": "REAUTHORIZATION",
            "reauthorizationDetails": [{"ratingGroup": rg} for rg in rating_groups]}


def _claim(uow: ReauthorizationUnit, now: datetime, lease: timedelta) -> list[Claimed]:
    claimed: list[Claimed] = []
    until = now + lease
    with uow.reading() as looking:  # most passes find nothing: no writer lock for that
        due = looking.reauthorizations.due(now, PASS_ROWS)
    if not due:
        return claimed
    with uow:
        for notice_id in due:
            row = uow.reauthorizations.claim(notice_id, now, until)
            if row is not None:
                claimed.append(Claimed(row.id, row.ref, row.attempts, until, time.monotonic(),
                                       row.notify_uri, list(row.rating_groups)))
        uow.commit()
    return claimed


def _record(uow: ReauthorizationUnit, outcomes: list[tuple[Claimed, dict]]) -> None:
    with uow:
        for row, values in outcomes:
            if not uow.reauthorizations.record(row.id, row.attempts, row.lease_until, values):
                log.warning("re-authorization %s: lease lost before its outcome was "
                            "recorded", row.id)
        uow.commit()


async def _attempt(client: httpx.AsyncClient, settings: Settings, row: Claimed) -> str | None:
    """POST one request within its lease; None on success, else the reason."""
    content = json.dumps(body(row.rating_groups), separators=(",", ":")).encode()
    return await post_once(client, row.url, content,
                           allow_private=settings.nchf_notify_private_targets,
                           secret=settings.nchf_notify_secret, event=f"reauth-{row.id}",
                           deadline=row.started + settings.nchf_notify_timeout_seconds,
                           never=NEVER)


def _outcome(settings: Settings, row: Claimed, error: str | None, now: datetime) -> dict:
    attempts = row.attempts + 1
    if error is None:
        return {"status": "delivered", "attempts": attempts, "delivered_at": now,
                "last_error": None}
    if attempts >= settings.nchf_notify_max_attempts:
        log.warning("re-authorization %s of session %s is dead after %s attempts: %s",
                    row.id, row.ref, attempts, error)
        return {"status": "dead", "attempts": attempts, "last_error": error}
    return {"attempts": attempts, "last_error": error,
            "next_attempt_at": now + timedelta(seconds=2 ** (attempts - 1))}


async def deliver_due(uow: ReauthorizationUnit, settings: Settings,
                      client: httpx.AsyncClient, clock: Clock | None = None
                      ) -> dict[str, int]:
    """One pass: send every request due now, at once; the outcomes' counts."""
    clock = clock or (lambda: datetime.now(UTC))
    lease = timedelta(seconds=settings.nchf_notify_timeout_seconds + LEASE_MARGIN)
    rows = await asyncio.to_thread(_claim, uow, clock(), lease)
    if not rows:
        return {"delivered": 0, "retrying": 0, "dead": 0}
    errors = await asyncio.gather(*(_attempt(client, settings, row) for row in rows))
    outcomes = [(row, _outcome(settings, row, error, clock()))
                for row, error in zip(rows, errors, strict=True)]
    await asyncio.to_thread(_record, uow, outcomes)
    counts = {"delivered": 0, "retrying": 0, "dead": 0}
    for _, values in outcomes:
        counts[values.get("status", "retrying")] += 1  # no status: still pending
    return counts


def client(settings: Settings) -> httpx.AsyncClient:
    """No proxies from the environment, no redirects (as webhook deliveries)."""
    return httpx.AsyncClient(timeout=settings.nchf_notify_timeout_seconds, trust_env=False,
                             follow_redirects=False)


def deliver_once(uow: ReauthorizationUnit, settings: Settings,
                 clock: Clock | None = None) -> dict[str, int]:
    """One pass, from synchronous code; the outcomes' counts."""
    async def once() -> dict[str, int]:
        async with client(settings) as http:
            return await deliver_due(uow, settings, http, clock)
    return asyncio.run(once())


async def run(uow: ReauthorizationUnit, settings: Settings) -> None:
    """Pass after pass, `nchf_notify_poll_seconds` apart, until cancelled."""
    async with client(settings) as http:
        while True:
            try:
                await deliver_due(uow, settings, http)
            except Exception:  # the loop outlives a bad pass; the reason goes to the log
                log.exception("re-authorization pass failed")
            await asyncio.sleep(settings.nchf_notify_poll_seconds)
