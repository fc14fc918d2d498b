"""Request rate limits shared by every worker process: GCRA state in the database.

The generic cell rate algorithm keeps one number per key, its theoretical
arrival time `tat`: when the key's budget would be back to full. With an
emission interval T (microseconds per request: 1 / rate) and a tolerance
L = burst x T, a request at `now` is allowed when

    max(tat, now) + T - now <= L

and then moves `tat` to max(tat, now) + T; a refused request leaves `tat` as it
was and should come back after max(tat, now) + T - now - L. That is the token
bucket of `api_rate_per_second` / `api_rate_burst` (a full bucket of `burst`
requests refilled at `rate`), with a single integer of state.

`admit` decides and moves the state in ONE statement (`uow.keys.admit`, store:
INSERT ... ON CONFLICT (key_id) DO UPDATE SET tat = CASE ... END RETURNING ...),
in its own short transaction: the database serializes concurrent requests of a key (a row lock
on PostgreSQL, the write lock on SQLite >= 3.35), so N worker processes, or N
hosts, share one budget. Instants are integer microseconds since the Unix epoch
from the caller's wall clock (hosts must keep their clocks in sync, as NTP
does), so no float rounding drifts the state.

`make_limiter` picks where a serving process keeps the limit (setting
`api_rate_limit_store`): in the process (`RateLimiter`, a token bucket per key,
for a single worker) or in the database (`DatabaseRateLimiter`, the GCRA above),
so several worker processes or hosts share one budget per key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from carryover.services.access.ports import KeysUnit
from carryover.settings import Settings

US = 1_000_000


def interval_us(rate: float) -> int:
    """Microseconds between requests at `rate` a second (at least 1)."""
    return max(1, round(US / rate))


def admit(uow: KeysUnit, key: str, now_us: int, interval: int, burst: int) -> int:
    """Count one request of `key` at `now_us`: 0 when allowed, else microseconds to wait.

    A first request of a key is always allowed (burst >= 1)."""
    limit = burst * interval
    with uow:
        tat, allowed = uow.keys.admit(key, now_us, interval, limit)
        uow.commit()
    if allowed:
        return 0
    return max(1, max(tat, now_us) + interval - now_us - limit)


class RateLimiter:
    """A token bucket per key: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str, now: float | None = None) -> float:
        """Take a token: 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class DatabaseRateLimiter:
    """The same limit for every process on the database: one GCRA row per key.

    `now` (seconds since the Unix epoch) is for tests; the default is the wall
    clock, which every process and host shares, unlike time.monotonic()."""

    def __init__(self, rate: float, burst: int, uow: Callable[[], KeysUnit]) -> None:
        self.rate, self.burst, self.uow = rate, burst, uow
        self.interval = interval_us(rate) if rate > 0 else 0

    def wait_for(self, key: str, now: float | None = None) -> float:
        """Take a cell: 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now_us = time.time_ns() // 1000 if now is None else round(now * US)
        return admit(self.uow(), key, now_us, self.interval, self.burst) / US


def make_limiter(settings: Settings,
                 uow: Callable[[], KeysUnit]) -> RateLimiter | DatabaseRateLimiter:
    """The limiter `api_rate_limit_store` asks for; `auto` is this process's own.

    `carryover serve --workers N` (N > 1) turns `auto` into `database` for its workers."""
    if settings.api_rate_limit_store == "database":
        return DatabaseRateLimiter(settings.api_rate_per_second, settings.api_rate_burst, uow)
    return RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)
