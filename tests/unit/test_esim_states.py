"""The profile state machine (specs/ES2PLUS.md): every legal and every illegal transition."""

from __future__ import annotations

import itertools

import pytest

from carryover.domain.esim.states import (
    IllegalTransition,
    ProfileState,
    Request,
    next_state,
)

S, R = ProfileState, Request

# (state, request) -> {arguments: state after}; every pair not listed is illegal.
LEGAL = {
    (S.AVAILABLE, R.DOWNLOAD_ORDER): {"with_eid": S.LINKED, "no_eid": S.ALLOCATED},
    (S.ALLOCATED, R.CONFIRM_ORDER): {"release": S.RELEASED, "no_release": S.CONFIRMED},
    (S.LINKED, R.CONFIRM_ORDER): {"release": S.RELEASED, "no_release": S.CONFIRMED},
    (S.CONFIRMED, R.RELEASE_PROFILE): {"": S.RELEASED},
    **{(state, R.CANCEL_ORDER): {"available": S.AVAILABLE, "unavailable": S.UNAVAILABLE}
       for state in (S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED, S.ERROR)},
    (S.RELEASED, R.DOWNLOAD): {"": S.DOWNLOADED},
    (S.DOWNLOADED, R.INSTALL): {"": S.INSTALLED},
    (S.RELEASED, R.FAIL): {"": S.ERROR},
    (S.DOWNLOADED, R.FAIL): {"": S.ERROR},
    (S.INSTALLED, R.DELETE): {"": S.AVAILABLE},
}
ARGUMENTS = {
    "with_eid": {"with_eid": True}, "no_eid": {"with_eid": False},
    "release": {"release": True}, "no_release": {"release": False},
    "available": {"final": S.AVAILABLE}, "unavailable": {"final": S.UNAVAILABLE}, "": {},
}
ILLEGAL = [pair for pair in itertools.product(S, R) if pair not in LEGAL]


def test_every_pair_is_covered():
    assert len(LEGAL) + len(ILLEGAL) == len(S) * len(R) == 72
    assert len(LEGAL) == 14


@pytest.mark.parametrize(("state", "request_", "variant", "after"), [
    (state, request, variant, after)
    for (state, request), variants in LEGAL.items() for variant, after in variants.items()])
def test_legal_transition(state, request_, variant, after):
    assert next_state(state, request_, **ARGUMENTS[variant]) is after


@pytest.mark.parametrize(("state", "request_"), ILLEGAL)
def test_illegal_transition_names_state_and_request(state, request_):
    with pytest.raises(IllegalTransition) as caught:
        next_state(state, request_, with_eid=True, release=True)
    error = caught.value
    assert (error.state, error.request) == (state, request_)
    assert f"state {state}" in str(error) and str(request_) in str(error)
    assert error.code.subject == "8.2.1"


@pytest.mark.parametrize("state", [S.DOWNLOADED, S.INSTALLED])
def test_cancel_once_on_a_device_is_refused_as_already_in_use(state):
    with pytest.raises(IllegalTransition) as caught:
        next_state(state, R.CANCEL_ORDER)
    assert (caught.value.code.subject, caught.value.code.reason) == ("8.2.1", "3.3")


def test_other_refusals_use_the_right_reason():
    def codes(state, request):
        with pytest.raises(IllegalTransition) as caught:
            next_state(state, request)
        return caught.value.code.subject, caught.value.code.reason
    assert codes(S.RELEASED, R.CONFIRM_ORDER) == ("8.2.1", "3.5")  # already confirmed
    assert codes(S.AVAILABLE, R.CANCEL_ORDER) == ("8.2.1", "3.5")
    assert codes(S.LINKED, R.DOWNLOAD_ORDER) == ("8.2.1", "3.3")  # already in use
    assert codes(S.UNAVAILABLE, R.DOWNLOAD_ORDER) == ("8.2.1", "3.7")


def test_cancel_must_end_available_or_unavailable():
    with pytest.raises(ValueError, match="available or unavailable"):
        next_state(S.LINKED, R.CANCEL_ORDER, final=S.INSTALLED)
