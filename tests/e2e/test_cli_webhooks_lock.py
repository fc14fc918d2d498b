"""`carryover webhooks deliver` takes the deployment's delivery lock, as serve does.

Issue 22 item 7 ("one delivery loop per deployment"): `carryover serve` ran its
loop only while it held the lock, but the CLI loop ignored it, so a
`webhooks deliver` beside serve was a second loop. Now the CLI takes the lock:
`--once` while another loop holds it says so and delivers nothing (that loop is
delivering), and the continuous loop says it waits, then takes over when the
holder goes away. Real processes, on SQLite (the lock file) and PostgreSQL (the
advisory lock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from carryover.services.notify import delivery as webhook_delivery
from carryover.services.notify import webhooks
from carryover.store.uow import UnitOfWork
from tests.integration.test_webhook_concurrency import Timed
from tests.integration.test_webhooks import JAN, use_up, world
from tests.loopback import serving

HELD = ("another delivery loop (carryover serve or webhooks deliver) holds the "
        "deployment's delivery lock")


def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "CARRYOVER_DATABASE_URL": db_url,
            "CARRYOVER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "CARRYOVER_WEBHOOK_POLL_SECONDS": "0.05"}


def _carryover(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("carryover")), *args]


def test_a_second_delivery_loop_waits_for_the_lock(db_url, tmp_path):
    _, engine = world(db_url)
    receiver = Timed()
    with serving(receiver.app()) as base:
        webhooks.add_endpoint(UnitOfWork(engine), base + "/hook", None, JAN, allow_private=True)
        use_up(engine)  # four notifications due
        # another process's loop, as serve holds it
        held = webhook_delivery.try_lock(UnitOfWork(engine))
        assert held is not None
        try:
            once = subprocess.run(_carryover("webhooks", "deliver", "--once", "--json"),
                                  env=_env(db_url), capture_output=True, text=True,
                                  timeout=60)
            assert once.returncode == 0, once.stderr
            assert HELD in once.stderr and "nothing delivered" in once.stderr
            assert json.loads(once.stdout)["delivered"] == 0
            assert receiver.events == []

            log = tmp_path / "deliver.err"
            with log.open("w") as err:
                loop = subprocess.Popen(_carryover("webhooks", "deliver"), env=_env(db_url),
                                        stdout=subprocess.DEVNULL, stderr=err)
            try:
                deadline = time.monotonic() + 30
                while HELD not in log.read_text() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert "waiting" in log.read_text()
                time.sleep(0.5)
                assert receiver.events == []  # it waits, it does not deliver
            finally:
                if loop.poll() is not None:
                    raise AssertionError(log.read_text())
        finally:
            held.release()
        try:
            deadline = time.monotonic() + 30
            while len(receiver.events) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(receiver.events) == 4  # it took over once the lock was free
            # ... and now holds it: serve (or a third loop) would wait.
            assert webhook_delivery.try_lock(UnitOfWork(engine)) is None
        finally:
            loop.terminate()
            loop.wait(timeout=30)
    freed = webhook_delivery.try_lock(UnitOfWork(engine))
    assert freed is not None  # the stopped loop let it go
    freed.release()
