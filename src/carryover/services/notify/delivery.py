"""The webhook delivery loop: one lane per endpoint, a bounded pool of lanes, a lease per delivery.

- Each pass fans the outbox out into delivery rows (store.webhook_repository) and
  starts a *lane* for every enabled endpoint with due deliveries and no lane
  running. A lane delivers its endpoint's due rows one after another (in id
  order, so a receiver sees them in order and is never hit by more than one
  POST at a time); at most `webhook_concurrency` lanes run at once, so a slow
  endpoint holds one lane and the others go on. The loop does not wait for a
  lane to end before its next pass: a lane stuck on a slow endpoint never
  delays what is due elsewhere.
- A lane claims ONE row at a time, just before its attempt: the claim pushes
  the row's `next_attempt_at` to now + `webhook_timeout` + LEASE_MARGIN (a
  compare-and-set, FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's writers are
  serialised), and the attempt is cut off `webhook_timeout` after the claim,
  whatever the receiver does (a slow drip of bytes included). So while an
  attempt may still be running its row is leased, and no other loop claims it.
  Recording the outcome releases the lease (delivered, dead, or the next retry
  instant) only if the lease is still the one this lane took. A lane stopped
  before its attempt gives the row back at once. Nothing needs renewing: no
  attempt can outlive its lease.
- Each attempt resolves and checks the target again (services.notify.targets)
  and connects to the checked address. Failures are recorded in a fixed
  vocabulary (`last_error`), never the transport's own words, so the text
  cannot tell an open port from a closed one (docs/security.md).
- One loop per deployment: `try_lock` (the unit of work's `delivery_lock`,
  store.delivery_lock) takes a PostgreSQL advisory lock held on its own
  connection, or an exclusive lock on a file beside the SQLite database.
  `carryover serve` runs the loop in whichever worker process holds it
  (carryover.api.worker); the others wait and take over if it goes away.
  `carryover webhooks deliver` takes the same lock (`run_locked`): its loop waits
  for it likewise, and a `--once` pass while another loop holds it does nothing.
  Two loops running anyway (one started with the lock file out of reach) are
  safe: the lease keeps them off each other's rows.
- The loop is given a unit of work (services.notify.ports.DeliveryUnit) and runs
  each step in a new one of its own (`uow.another()`): the steps run in threads,
  several lanes at once, and a unit of work runs one transaction at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from carryover.services.notify import targets as webhook_targets
from carryover.services.notify.webhooks import sign
from carryover.settings import Settings

if TYPE_CHECKING:
    from carryover.services.notify.ports import DeliveryUnit, HeldLock, WebhookUnit

__all__ = ["Loop", "deliver_once", "holding", "run", "run_locked", "try_lock"]

log = logging.getLogger("carryover.webhooks")

LEASE_MARGIN = 30.0  # seconds of lease beyond an attempt's cut-off, for recording it
LANE_ROWS = 100  # rows a lane delivers before it ends (the next pass starts another)
LOCK_RETRY_SECONDS = 5.0  # how often a loop waiting for the lock tries again

# The whole vocabulary of `last_error` besides "HTTP <status>".
NO_RESPONSE = "no HTTP response (refused, unreachable, reset, timed out or not HTTP)"
REFUSED = "target refused: {}"
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Claimed:
    id: int
    attempts: int
    lease_until: datetime
    started: float  # time.monotonic() at the claim
    outbox_id: int
    payload: dict
    url: str
    secret: str


def try_lock(uow: DeliveryUnit) -> HeldLock | None:
    """Take the deployment's delivery-loop lock, or None when another loop holds it."""
    return uow.delivery_lock()


def _due_endpoints(uow: WebhookUnit, now: datetime) -> list[str]:
    with uow:
        uow.webhooks.fan_out(now)
        ids = uow.webhooks.due_endpoints(now)
        uow.commit()
    return ids


def _claim_one(uow: WebhookUnit, endpoint_id: str, now: datetime, lease: timedelta
               ) -> Claimed | None:
    until = now + lease
    with uow:
        row = uow.webhooks.claim(endpoint_id, now, until)
        if row is None:
            return None
        if row.disabled_at is not None:
            return None  # rolled back: a removed endpoint's rows are not sent
        uow.commit()
    return Claimed(row.id, row.attempts, until, time.monotonic(), row.outbox_id,
                   row.payload, row.url, row.secret)


def _record(uow: WebhookUnit, row: Claimed, values: dict) -> bool:
    """Store an attempt's outcome, if the row is still under this lane's lease."""
    with uow:
        done = uow.webhooks.record(row.id, row.attempts, row.lease_until, values)
        uow.commit()
    if not done:
        log.warning("webhook delivery %s: lease lost before its outcome was recorded", row.id)
    return done


async def post_once(client: httpx.AsyncClient, url: str, body: bytes, *, allow_private: bool,
                    secret: str | None, event: str, deadline: float,
                    never: frozenset[str] = frozenset()) -> str | None:
    """POST `body` (JSON) to `url` once, before `deadline` (time.monotonic()): resolved
    and checked (services.notify.targets), connected to the checked address, signed
    under `secret` if there is one; the address kinds in `never` are refused even where
    private ones are allowed. None on a 2xx, else the reason in the fixed
    vocabulary (NO_RESPONSE, REFUSED, "HTTP <status>")."""
    try:
        target = webhook_targets.parse(url)
        address = await asyncio.to_thread(webhook_targets.resolve, target, allow_private,
                                          never)
    except webhook_targets.RefusedTarget as exc:
        return REFUSED.format(exc.kind)
    headers = {"host": target.netloc, "content-type": "application/json"}
    if secret:
        stamp = str(int(time.time()))
        headers |= {"x-carryover-timestamp": stamp, "x-carryover-event": event,
                    "x-carryover-signature": "sha256=" + sign(secret, stamp, body)}
    left = deadline - time.monotonic()
    if left <= 0:
        return NO_RESPONSE

    async def post() -> int:  # the status only: the receiver's body is never read
        async with client.stream("POST", target.pinned_url(address), content=body,
                                 headers=headers,
                                 extensions={"sni_hostname": target.host}) as response:
            return response.status_code

    try:
        status = await asyncio.wait_for(post(), left)
    except (TimeoutError, httpx.HTTPError, OSError):
        return NO_RESPONSE
    return None if 200 <= status < 300 else f"HTTP {status}"


async def _attempt(client: httpx.AsyncClient, settings: Settings, row: Claimed) -> str | None:
    """POST one delivery within its lease; None on success, else the fixed-vocabulary reason."""
    body = json.dumps({"id": row.outbox_id, **row.payload}, sort_keys=True,
                      separators=(",", ":")).encode()
    return await post_once(client, row.url, body,
                           allow_private=settings.webhook_allow_private_targets,
                           secret=row.secret, event=str(row.outbox_id),
                           deadline=row.started + settings.webhook_timeout)


def _outcome(settings: Settings, row: Claimed, error: str | None, now: datetime,
             done: dict[str, int]) -> dict:
    attempts = row.attempts + 1
    if error is None:
        done["delivered"] += 1
        return {"status": "delivered", "attempts": attempts, "delivered_at": now,
                "last_error": None}
    if attempts >= settings.webhook_max_attempts:
        done["dead"] += 1
        log.warning("webhook delivery %s to %s is dead after %s attempts: %s",
                    row.id, row.url, attempts, error)
        return {"status": "dead", "attempts": attempts, "last_error": error}
    done["retrying"] += 1
    wait = settings.webhook_backoff * 2 ** (attempts - 1)
    return {"attempts": attempts, "last_error": error,
            "next_attempt_at": now + timedelta(seconds=wait)}


class Loop:
    """The delivery loop of one process: lanes by endpoint under a bounded pool.

    Each step (a pass's fan-out, a claim, an outcome) runs in a thread, in a new unit
    of work of its own (`uow.another()`), as lanes run at once."""

    def __init__(self, uow: DeliveryUnit, settings: Settings, clock: Clock | None = None
                 ) -> None:
        self.uow, self.settings = uow, settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lease = timedelta(seconds=settings.webhook_timeout + LEASE_MARGIN)
        self.pool = asyncio.Semaphore(settings.webhook_concurrency)
        self.lanes: dict[str, asyncio.Task] = {}
        self.done = {"delivered": 0, "retrying": 0, "dead": 0}

    async def _lane(self, client: httpx.AsyncClient, endpoint_id: str) -> None:
        try:
            await self._deliver_rows(client, endpoint_id)
        except Exception:  # e.g. the database went away: the next pass starts a new lane
            log.exception("webhook delivery lane of %s failed", endpoint_id)

    async def _deliver_rows(self, client: httpx.AsyncClient, endpoint_id: str) -> None:
        async with self.pool:
            for _ in range(LANE_ROWS):
                row = await asyncio.to_thread(_claim_one, self.uow.another(), endpoint_id,
                                              self.clock(), self.lease)
                if row is None:
                    return
                try:
                    error = await _attempt(client, self.settings, row)
                except asyncio.CancelledError:
                    await asyncio.shield(asyncio.to_thread(self._give_back, row))
                    raise
                values = _outcome(self.settings, row, error, self.clock(), self.done)
                await asyncio.to_thread(_record, self.uow.another(), row, values)

    def _give_back(self, row: Claimed) -> None:
        # Stopped mid-attempt: the POST may have gone out, so the row stays leased
        # until its attempt's cut-off has passed, then is due again.
        _record(self.uow.another(), row, {"next_attempt_at": row.lease_until - timedelta(
            seconds=LEASE_MARGIN)})

    async def dispatch(self, client: httpx.AsyncClient) -> None:
        """One pass: fan out, and start a lane for each endpoint with due rows and none."""
        self.lanes = {k: t for k, t in self.lanes.items() if not t.done()}
        for endpoint_id in await asyncio.to_thread(_due_endpoints, self.uow.another(),
                                                   self.clock()):
            if endpoint_id not in self.lanes:
                self.lanes[endpoint_id] = asyncio.create_task(self._lane(client, endpoint_id))

    async def run(self, passes: int | None = None) -> dict[str, int]:
        """`passes` passes (or until cancelled), then wait for the lanes; the counts."""
        async with _client(self.settings) as client:
            try:
                n = 0
                while passes is None or n < passes:
                    if n:
                        await asyncio.sleep(self.settings.webhook_poll_seconds)
                    try:
                        await self.dispatch(client)
                    except Exception:  # the loop outlives a bad pass; the reason is logged
                        if passes is not None:
                            raise
                        log.exception("webhook delivery pass failed")
                    n += 1
                await asyncio.gather(*self.lanes.values())
            finally:
                for task in self.lanes.values():
                    task.cancel()
                await asyncio.gather(*self.lanes.values(), return_exceptions=True)
        return self.done


def _client(settings: Settings) -> httpx.AsyncClient:
    # No proxies from the environment (the connection must go to the checked
    # address) and no redirects (a 3xx could point anywhere): it counts as a failure.
    return httpx.AsyncClient(timeout=settings.webhook_timeout, trust_env=False,
                             follow_redirects=False)


def deliver_once(uow: DeliveryUnit, settings: Settings, clock: Clock | None = None
                 ) -> dict[str, int]:
    """One pass: fan out, deliver what is due on every endpoint; the outcomes' counts."""
    return asyncio.run(Loop(uow, settings, clock).run(1))


def run(uow: DeliveryUnit, settings: Settings, passes: int | None = None) -> dict[str, int]:
    """The loop for `passes` passes (or until interrupted); the summed counts."""
    return asyncio.run(Loop(uow, settings).run(passes))


def lock_retry_seconds(settings: Settings) -> float:
    """How long a loop waiting for the delivery lock sleeps before it tries again."""
    return min(LOCK_RETRY_SECONDS, 10 * settings.webhook_poll_seconds)


def run_locked(uow: DeliveryUnit, settings: Settings, passes: int | None = None,
               waiting: Callable[[], None] = lambda: None) -> dict[str, int] | None:
    """`run` while holding the deployment's delivery lock, as `carryover serve` does.

    When another loop holds it: a bounded run (`passes`) returns None at once, as
    that loop delivers; an endless one calls `waiting` once and waits for the lock.
    """
    lock = try_lock(uow)
    if lock is None:
        if passes is not None:
            return None
        waiting()
        while lock is None:
            time.sleep(lock_retry_seconds(settings))
            lock = try_lock(uow)
    try:
        return run(uow, settings, passes)
    finally:
        lock.release()


@contextlib.contextmanager
def holding(uow: DeliveryUnit) -> Iterator[HeldLock | None]:
    lock = try_lock(uow)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()
