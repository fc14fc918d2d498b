"""The deployment's webhook delivery-loop lock (services.notify.delivery runs one loop
per deployment): a PostgreSQL advisory lock held on its own connection, or an
exclusive lock on a file beside the SQLite database.

A database only this process can open (in memory, a `file:` URI) needs no lock:
`try_lock` hands back one that holds nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

LOCK_KEY = 0x636172727977  # the PostgreSQL advisory lock of the delivery loop


class DeliveryLock:
    """The deployment's delivery-loop lock while held; `release` gives it up."""

    def __init__(self, release: Callable[[], None]) -> None:
        self.release = release


def try_lock(engine: Engine) -> DeliveryLock | None:
    """Take the deployment's delivery-loop lock, or None when another process holds it."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})").scalar()
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return None

        def unlock() -> None:
            try:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
                conn.commit()
            except Exception:  # a dead connection holds no lock; drop it from the pool
                conn.invalidate()
            finally:
                conn.close()
        return DeliveryLock(unlock)
    return _file_lock(engine.url.database)


def _file_lock(database: str | None) -> DeliveryLock | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return DeliveryLock(lambda: None)  # a database only this process can open
    import fcntl

    handle = Path(database + ".webhooks.lock").open("a")  # noqa: SIM115 - held while locked
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None

    def unlock() -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
    return DeliveryLock(unlock)
