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
"""

from __future__ import annotations

from carryover.services.access_ports import KeysUnit

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
