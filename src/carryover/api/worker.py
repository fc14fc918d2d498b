"""The webhook delivery worker inside `carryover serve`: a background asyncio task.

Started by the app's lifespan when `webhook_worker` is on: every
`webhook_poll_seconds` it runs one delivery pass (services.webhooks.deliver_once)
in a thread, so the event loop keeps serving requests. A failing pass is
logged and the next one tries again; the task is cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from carryover.services import webhooks

log = logging.getLogger("carryover.webhooks")


async def deliver_forever(app: FastAPI) -> None:
    carry = app.state.carry
    while True:
        try:
            await asyncio.to_thread(lambda: webhooks.deliver_once(carry.open(), carry.settings))
        except Exception:  # the worker must outlive a bad pass; the reason goes to the log
            log.exception("webhook delivery pass failed")
        await asyncio.sleep(carry.settings.webhook_poll_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = None
    if app.state.carry.settings.webhook_worker:
        task = asyncio.create_task(deliver_forever(app))
    try:
        yield
    finally:
        charging = getattr(app.state, "charging", None)
        if charging is not None:  # answer what is queued, then stop its thread
            await asyncio.to_thread(charging.close)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
