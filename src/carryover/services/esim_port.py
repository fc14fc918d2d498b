"""What the eSIM services need from an SM-DP+: the four ES2+ functions the operator calls.

The services own this interface; adapters/es2plus_client.py implements it over
HTTPS, the tests may implement it in memory. An implementation raises
FunctionFailed when the SM-DP+ answers Failed or Expired, and TransportFailure
when it cannot be reached or does not answer in ES2+; the services turn both
into an SmdpError, one line for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from carryover.domain.esim.status import FunctionFailed
from carryover.services.errors import ServiceError

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
