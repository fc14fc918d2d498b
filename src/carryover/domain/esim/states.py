"""A profile's life at the SM-DP+ (specs/ES2PLUS.md), as one transition function.

    available --downloadOrder--> linked (EID given) | allocated (no EID)
    allocated | linked --confirmOrder--> released (releaseFlag) | confirmed
    confirmed --releaseProfile--> released
    released --download (point 3)--> downloaded --install (point 4)--> installed
    released | downloaded --failure (point 3 or 4 Failed)--> error
    allocated | linked | confirmed | released | error --cancelOrder--> available | unavailable
    installed --delete (point 5)--> available

cancelOrder is refused once the profile is downloaded or installed (ES2+ 8.2.1 /
3.3): the profile is on a device and only the device can remove it. When the
device deletes it (notification point 5) the profile is available again, which
is what lets a line keep its ICCID on a new device (SGP.22 profile reuse).
Every other request in the wrong state is an invalid transition (8.2.1 / 3.5).
"""

from __future__ import annotations

from enum import StrEnum

from carryover.domain.esim.status import StatusCode


class ProfileState(StrEnum):
    AVAILABLE = "available"
    ALLOCATED = "allocated"
    LINKED = "linked"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


class Request(StrEnum):
    """What can happen to a profile: an ES2+ function, or a device event the SM-DP+ sees."""

    DOWNLOAD_ORDER = "downloadOrder"
    CONFIRM_ORDER = "confirmOrder"
    RELEASE_PROFILE = "releaseProfile"
    CANCEL_ORDER = "cancelOrder"
    DOWNLOAD = "download"
    INSTALL = "install"
    FAIL = "fail"
    DELETE = "delete"


S = ProfileState
# Where each request may start; the target may depend on the request's arguments.
SOURCES: dict[Request, frozenset[ProfileState]] = {
    Request.DOWNLOAD_ORDER: frozenset({S.AVAILABLE}),
    Request.CONFIRM_ORDER: frozenset({S.ALLOCATED, S.LINKED}),
    Request.RELEASE_PROFILE: frozenset({S.CONFIRMED}),
    Request.CANCEL_ORDER: frozenset({S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED, S.ERROR}),
    Request.DOWNLOAD: frozenset({S.RELEASED}),
    Request.INSTALL: frozenset({S.DOWNLOADED}),
    Request.FAIL: frozenset({S.RELEASED, S.DOWNLOADED}),
    Request.DELETE: frozenset({S.INSTALLED}),
}
ON_DEVICE = frozenset({S.DOWNLOADED, S.INSTALLED})
# A line's profile is "live" while an order may still lead to (or is) a profile on a device.
LIVE = frozenset({S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED, S.DOWNLOADED, S.INSTALLED,
                  S.ERROR})
CANCEL_TARGETS = frozenset({S.AVAILABLE, S.UNAVAILABLE})


class IllegalTransition(Exception):
    """`request` cannot happen to a profile in `state`; `code` is the ES2+ refusal."""

    def __init__(self, state: ProfileState, request: Request, code: StatusCode) -> None:
        self.state = state
        self.request = request
        self.code = code
        allowed = ", ".join(sorted(SOURCES[request])) or "nothing"
        super().__init__(f"a profile in state {state} cannot take {request} "
                         f"(allowed from: {allowed}; ES2+ {code.subject} / {code.reason})")


def refusal(state: ProfileState, request: Request) -> StatusCode:
    if request is Request.CANCEL_ORDER and state in ON_DEVICE:
        return StatusCode("8.2.1", "3.3", f"profile is {state}: only the device can remove it")
    if request is Request.DOWNLOAD_ORDER and state is S.UNAVAILABLE:
        return StatusCode("8.2.1", "3.7", "profile is unavailable")
    if request is Request.DOWNLOAD_ORDER:
        return StatusCode("8.2.1", "3.3", f"profile is already {state}")
    return StatusCode("8.2.1", "3.5", f"{request} is not allowed in state {state}")


def next_state(state: ProfileState, request: Request, *, with_eid: bool = False,
               release: bool = False,
               final: ProfileState = ProfileState.AVAILABLE) -> ProfileState:
    """The state after `request`, or IllegalTransition.

    with_eid: downloadOrder named an EID; release: confirmOrder's releaseFlag;
    final: cancelOrder's finalProfileStatusIndicator (available or unavailable).
    """
    if state not in SOURCES[request]:
        raise IllegalTransition(state, request, refusal(state, request))
    match request:
        case Request.DOWNLOAD_ORDER:
            return S.LINKED if with_eid else S.ALLOCATED
        case Request.CONFIRM_ORDER:
            return S.RELEASED if release else S.CONFIRMED
        case Request.CANCEL_ORDER:
            if final not in CANCEL_TARGETS:
                raise ValueError(f"cancelOrder ends in available or unavailable, not {final}")
            return final
        case Request.RELEASE_PROFILE:
            return S.RELEASED
        case Request.DOWNLOAD:
            return S.DOWNLOADED
        case Request.INSTALL:
            return S.INSTALLED
        case Request.FAIL:
            return S.ERROR
        case Request.DELETE:
            return S.AVAILABLE
    raise AssertionError(request)  # pragma: no cover - every request is matched above
