"""The charging queue: one thread per process that answers Nchf requests in batches.

The API's request handlers hand their request to the queue and wait for its
answer without holding a thread. The queue's thread takes whatever requests
have arrived, answers them all in one transaction (services.charging.group_commit:
group commit) and hands each its answer, then takes the next lot. Under light
load a batch is one request and waits for nothing; under heavy load the
requests that arrive during one commit share the next, so the cost of a
commit and of each statement is spread over many requests.

A queue has `lanes` threads, each with its own batches and database
connection, so that one lane's CPU work overlaps another's waits for the
database. Every request of a session goes to the same lane (by its
chargingDataRef; a create by its subscriber), and a lane answers in arrival
order, so a session's requests are answered in the order they came. Batches
of two lanes that share an account wait for each other on its lock (taken in
account id order, services.charging.group_commit), as two workers' batches do.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError

from carryover.services.charging.book_cache import BookCache
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import ChargingOp, ChargingPolicy
from carryover.services.charging.ports import ChargingUnit

_STOP = object()
log = logging.getLogger("carryover.charging")


class ChargingQueue:
    """Answers ChargingOps in batches of at most `max_batch`, on `lanes` threads."""

    def __init__(self, uow_factory: Callable[[], ChargingUnit], policy: ChargingPolicy,
                 max_batch: int = 64, lanes: int = 1,
                 observe: Callable[[int, float], None] | None = None,
                 cached_accounts: int = 0) -> None:
        """`uow_factory()` makes the unit of work of one batch (a lane's thread has its
        own); `observe(requests, seconds)` is told of every batch answered (metrics);
        `cached_accounts` books are kept between batches (charging_batch.BookCache)."""
        self.uow_factory, self.policy, self.max_batch = uow_factory, policy, max_batch
        self.cache = BookCache(cached_accounts) if cached_accounts > 0 else None
        self.observe = observe
        self._lanes = [_Lane(self, n) for n in range(max(1, lanes))]
        self.batches = 0  # how many transactions answered how many requests (for tests)
        self.answered = 0
        self._count = threading.Lock()

    def submit(self, op: ChargingOp) -> Future:
        """The future answer of `op`: a ChargingAnswer, None for a release, or the
        request's error (UnknownSubscriber, SessionNotFound, StaleRequest, ...)."""
        key = op.ref if op.ref is not None else (op.request.subscriber or "")
        return self._lanes[hash(key) % len(self._lanes)].submit(op)

    def close(self) -> None:
        """Answer what is queued, then stop the threads."""
        for lane in self._lanes:
            lane.close()

    def _answer(self, batch: list[tuple[ChargingOp, Future]]) -> None:
        started = time.perf_counter()
        try:
            results = charge(self.uow_factory(), self.policy, [op for op, _ in batch],
                             self.cache)
        except BaseException as exc:  # every waiter must hear of it
            for _, future in batch:
                _settle(future, exc)
            return
        with self._count:
            self.batches += 1
            self.answered += len(batch)
        if self.observe is not None:
            self.observe(len(batch), time.perf_counter() - started)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: Future, result: object) -> None:
    """Hand `result` to its waiter; one that gave up (its future was cancelled, e.g. the
    HTTP request was cancelled at shutdown) is skipped, not an error for the lane."""
    try:
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class _Lane:
    """One thread answering its queue's requests in batches, in arrival order."""

    def __init__(self, owner: ChargingQueue, number: int) -> None:
        self.owner, self.number = owner, number
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def submit(self, op: ChargingOp) -> Future:
        future: Future = Future()
        self._start()
        self._queue.put((op, future))
        return future

    def close(self) -> None:
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
                self._thread = threading.Thread(
                    target=self._run, name=f"carryover-charging-{self.number}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while True:
            try:
                item = self._queue.get(block=not stop)
            except queue.Empty:
                return  # stopping, and nothing is left to answer
            if item is _STOP:
                stop = True
                continue
            batch = [item]
            while len(batch) < self.owner.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    continue
                batch.append(item)
            try:
                self.owner._answer(batch)
            except Exception:  # the lane must outlive anything; its waiters were told
                log.exception("charging lane %s: a batch failed", self.number)
