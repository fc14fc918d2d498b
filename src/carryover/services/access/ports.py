"""What API access needs from the store: keys, rate-limit state, idempotent responses.

The access services (api_keys, rate_limits, idempotency) run in a unit of work
that carries these repositories: `uow.keys` (keys and each key's GCRA state)
and `uow.idempotency` (the first response to each Idempotency-Key). The store
implements them (store/api_repository.py), tests/unit/fakes.py in memory. Each
`with uow:` block is one transaction, rolled back unless committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from carryover.services.unit_of_work import Reading, Transaction


class KeyStore(Protocol):
    """Key rows: `id`, `role`, `account_id`, `account_name`, `label`, `created_at`,
    `revoked_at` (and `token_hash` from `key_by_hash`)."""

    def add_key(self, **values: Any) -> None: ...

    def all_keys(self) -> list[Any]:
        """Every key, oldest first."""

    def key(self, key_id: str) -> Any: ...

    def key_by_hash(self, token_hash: str) -> Any: ...

    def revoke(self, key_id: str, at: datetime) -> None: ...

    def admit(self, key: str, now: int, interval: int, limit: int) -> tuple[int, bool]:
        """Count a request of `key` at `now` (integer microseconds) in one step that
        concurrent callers cannot interleave: the key's `tat` afterwards, and whether
        the request fitted (max(tat, now) + interval - now <= limit; only then does
        `tat` move). A first request of a key sets `tat` to now + interval."""


class IdempotencyStore(Protocol):
    """Stored responses: `route`, `request_hash`, `status` (0: in progress) and `body`,
    found by (API key id, `route_hash`, key): the SHA-256 of the route, never the route
    itself, whose length the client chooses."""

    def claim(self, **values: Any) -> bool:
        """Store the key's row (in progress); False when the key is already there."""

    def stored_response(self, api_key_id: str, route_hash: str, key: str) -> Any: ...

    def complete(self, api_key_id: str, route_hash: str, key: str, status: int,
                 body: Any) -> None: ...

    def release(self, api_key_id: str, route_hash: str, key: str) -> None: ...


class Accounts(Protocol):
    def account_by_name(self, name: str) -> Any:
        """The account row (`id`, `name`, ...), or None."""


class KeysUnit(Reading, Protocol):
    keys: KeyStore
    accounts: Accounts


class IdempotencyUnit(Transaction, Protocol):
    idempotency: IdempotencyStore
