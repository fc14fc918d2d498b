"""What the eSIM services need from the outside: an SM-DP+ and a store.

`Smdp` is the four ES2+ functions the operator calls: adapters/es2plus_client.py
implements it over HTTPS, the tests may implement it in memory. An
implementation raises FunctionFailed when the SM-DP+ answers Failed or Expired,
and TransportFailure when it cannot be reached or does not answer in ES2+; the
services turn both into an SmdpError, one line for the operator.

`EsimUnit` is the unit of work the eSIM use cases run in: the profile inventory,
orders and history (`uow.esim`, store/esim_repository.py), the lines
(`uow.accounts`) and the notification outbox (`uow.outbox`). Each `with uow:`
block is one transaction, rolled back unless committed; tests/unit/fakes.py
implements it in memory. Instants come back UTC-aware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from carryover.domain.esim.status import FunctionFailed
from carryover.services.errors import ServiceError
from carryover.services.unit_of_work import Transaction

AVAILABLE = "Available"
UNAVAILABLE = "Unavailable"


class TransportFailure(Exception):
    """The SM-DP+ could not be reached, or did not answer in ES2+, after every retry."""


@dataclass(frozen=True, slots=True)
class ConfirmedOrder:
    matching_id: str
    eid: str | None
    smdp_address: str | None


class Smdp(Protocol):
    def download_order(self, *, iccid: str | None = None, eid: str | None = None,
                       profile_type: str | None = None) -> str: ...

    def confirm_order(self, *, iccid: str, release: bool, eid: str | None = None,
                      matching_id: str | None = None,
                      confirmation_code: str | None = None) -> ConfirmedOrder: ...

    def cancel_order(self, *, iccid: str, final_status: str = AVAILABLE,
                     eid: str | None = None, matching_id: str | None = None) -> None: ...

    def release_profile(self, *, iccid: str) -> None: ...


class SmdpError(ServiceError):
    """The SM-DP+ refused a function, or could not be reached; `codes` are ES2+'s."""

    def __init__(self, message: str, codes: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.codes = codes

    @classmethod
    def from_exception(cls, exc: Exception, iccid: str) -> SmdpError:
        if isinstance(exc, FunctionFailed):
            return cls(f"SM-DP+ refused {exc.function} for ICCID {iccid}: {exc.status}, "
                       f"{exc.code.describe() if exc.code else 'no status code'}", exc.codes)
        return cls(f"SM-DP+ unreachable for ICCID {iccid}: {exc}")


SMDP_FAILURES = (FunctionFailed, TransportFailure)


class EsimStore(Protocol):
    """Profiles, orders and their history; rows with the columns of store/esim_tables.py."""

    def add_profiles(self, rows: list[dict[str, Any]], at: datetime) -> None: ...

    def known(self, iccids: Iterable[str], imsis: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of these ICCIDs and IMSIs the inventory already holds."""

    def profile(self, iccid: str, lock: bool = False) -> Any:
        """The profile, or None; `lock`: no other transaction moves it until this one ends."""

    def profiles(self, state: str | None = None) -> list[Any]: ...

    def counts(self) -> dict[str, dict[str, int]]:
        """Profiles per type and state; `reserved`: available but held by an open order."""

    def pick_available(self, profile_type: str | None = None,
                       exclude: str | None = None) -> Any:
        """The oldest available profile no open order holds (locked), or None."""

    def available_types(self) -> list[str]: ...

    def set_profile(self, iccid: str, at: datetime, **values: Any) -> None: ...

    def create_order(self, line_id: str, iccid: str, eid: str | None, at: datetime) -> int: ...

    def open_order(self, line_id: str) -> Any: ...

    def open_order_for(self, iccid: str) -> Any: ...

    def orders(self, line_id: str | None = None, iccid: str | None = None) -> list[Any]:
        """Orders in the order they were made."""

    def update_order(self, order_id: int, **values: Any) -> None: ...

    def close_order(self, order_id: int, at: datetime, reason: str) -> None: ...

    def add_event(self, iccid: str, at: datetime, source: str, kind: str,
                  from_state: str | None = None, to_state: str | None = None,
                  detail: dict | None = None, dedupe_key: str | None = None) -> bool:
        """Append a history row; False (and nothing stored) when `dedupe_key` is known."""

    def event_with_key(self, dedupe_key: str) -> Any: ...

    def events(self, iccid: str) -> list[Any]: ...

    def line_account(self, line_id: str) -> Any:
        """The line's `msisdn` with its account's `id`, `name`, `cycle_start`,
        `cycle_day` and `timezone`, or None."""


class Lines(Protocol):
    def find_line(self, ident: str) -> Any:
        """A line by id, MSISDN or IMSI (its `id`, `account_id`, ...), or None."""


class Outbox(Protocol):
    def offer(self, rows: list[dict]) -> None:
        """Offer notification rows; each (line, cycle_start, kind) is kept once."""


class EsimUnit(Transaction, Protocol):
    esim: EsimStore
    accounts: Lines
    outbox: Outbox
