"""The charging queue: one thread per process that answers Nchf requests in batches.

The API's request handlers hand their request to the queue and wait for its
answer without holding a thread. The queue's thread takes whatever requests
have arrived, answers them all in one transaction (services.charging_batch:
group commit) and hands each its answer, then takes the next lot. Under light
load a batch is one request and waits for nothing; under heavy load the
requests that arrive during one commit share the next, so the cost of a
commit and of each statement is spread over many requests. Requests are
answered in the order they arrived.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from carryover.services.charging_batch import charge
from carryover.services.charging_model import ChargingOp, ChargingPolicy
from carryover.store.uow import UnitOfWork

_STOP = object()


class ChargingQueue:
    """Answers ChargingOps in batches of at most `max_batch`, on its own thread."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], policy: ChargingPolicy,
                 max_batch: int = 64) -> None:
        self.uow_factory, self.policy, self.max_batch = uow_factory, policy, max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.batches = 0  # how many transactions answered how many requests (for tests)
        self.answered = 0

    def submit(self, op: ChargingOp) -> Future:
        """The future answer of `op`: a ChargingAnswer, None for a release, or the
        request's error (UnknownSubscriber, SessionNotFound, StaleRequest, ...)."""
        future: Future = Future()
        self._start()
        self._queue.put((op, future))
        return future

    def close(self) -> None:
        """Answer what is queued, then stop the thread."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="carryover-charging",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[tuple[ChargingOp, Future]]) -> None:
        try:
            results = charge(self.uow_factory, self.policy, [op for op, _ in batch])
        except BaseException as exc:  # every waiter must hear of it
            for _, future in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.answered += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
