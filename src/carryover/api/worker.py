"""The delivery workers inside `carryover serve`: background asyncio tasks.

Re-authorizations owed to packet cores (services.charging.reauthorization_delivery)
are sent by every worker process: each claims what it sends under a lease, so
several need no lock. Webhooks go out from one process at a time, started by the
app's lifespan when `webhook_worker` is on. With several worker
processes (`serve --workers N`) or several hosts, only the one that holds the
deployment's delivery lock (services.notify.delivery.try_lock: a PostgreSQL
advisory lock, or a lock file beside the SQLite database) runs the delivery
loop; the others try again every few seconds (`lock_retry_seconds`) and take over when the
holder stops. The loop runs on the app's event loop (its database calls in
threads), so requests keep being served; a failing pass is logged and the next
one tries again; the task is cancelled at shutdown, which releases the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from carryover.services.charging import reauthorization_delivery
from carryover.services.notify import delivery as webhook_delivery

log = logging.getLogger("carryover.webhooks")


async def deliver_forever(app: FastAPI) -> None:
    carry = app.state.carry
    settings = carry.settings
    while True:
        lock = None
        try:
            uow = carry.uow()
            lock = await asyncio.to_thread(webhook_delivery.try_lock, uow)
            if lock is not None:
                await webhook_delivery.Loop(uow, settings).run()
        except Exception:  # the worker must outlive a bad pass; the reason goes to the log
            log.exception("webhook delivery loop failed")
        finally:
            if lock is not None:
                await asyncio.shield(asyncio.to_thread(lock.release))
        await asyncio.sleep(webhook_delivery.lock_retry_seconds(settings)
                            if lock is None else settings.webhook_poll_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    carry = app.state.carry
    tasks = [asyncio.create_task(reauthorization_delivery.run(carry.uow(), carry.settings))]
    if carry.settings.webhook_worker:
        tasks.append(asyncio.create_task(deliver_forever(app)))
    try:
        yield
    finally:
        # Answer what the charging queue holds, then stop its thread.
        await asyncio.to_thread(carry.close)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
