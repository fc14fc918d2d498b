"""The SM-DP+ emulator's profile store: ES2+ functions and a simulated device, in memory.

For development and tests only; it holds no keys and builds no profile packages.
It keeps the profile state machine of domain/esim/states.py, answers ES2+ like
an SM-DP+ (status codes of specs/ES2PLUS.md), and remembers each answer by
(requester, functionCallIdentifier, function): a retried call gets the first
answer again and the function is not run twice. `faults` make the next calls
of a function fail in transit, before or after it runs, for retry tests.

The device side (download with an activation code, enable, disable, delete)
raises the notifications a real SM-DP+ forwards to the operator through
`notify` (points 2, 3, 4 and 5); enable and disable stay in the emulator's
own history, as there is no ES2+ notification point for them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carryover.domain.esim import confirmation
from carryover.domain.esim.activation import MATCHING_ID, parse_activation_code
from carryover.domain.esim.download_progress import DownloadProgress, notification_body
from carryover.domain.esim.identifiers import IdentifierError, parse_eid, parse_iccid
from carryover.domain.esim.states import IllegalTransition, ProfileState, Request, next_state
from carryover.domain.esim.status import FAILED, SUCCESS, StatusCode, failed, response_header

S = ProfileState
FUNCTIONS = ("downloadOrder", "confirmOrder", "cancelOrder", "releaseProfile")
FINAL = {"Available": S.AVAILABLE, "Unavailable": S.UNAVAILABLE}


class Refused(Exception):
    def __init__(self, code: StatusCode) -> None:
        super().__init__(code.describe())
        self.code = code


class DeviceError(Exception):
    """A simulated device action the SM-DP+ refuses; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class EmulatedProfile:
    iccid: str
    imsi: str
    profile_type: str
    state: ProfileState = S.AVAILABLE
    eid: str | None = None
    matching_id: str | None = None
    cc_hash: bytes | None = None
    enabled: bool = False
    history: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"iccid": self.iccid, "imsi": self.imsi, "profileType": self.profile_type,
                "state": str(self.state), "eid": self.eid, "matchingId": self.matching_id,
                "enabled": self.enabled, "history": list(self.history)}


@dataclass
class Fault:
    function: str
    times: int = 1
    after: bool = True  # run the function, then lose the answer (else fail before running)
    status: int = 503


def _matching_id() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


class SmdpStore:
    def __init__(self, address: str = "smdp.localhost", *,
                 notify: Callable[[dict], Any] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.address = address
        self.notify = notify
        self.clock = clock
        self.lock = threading.RLock()
        self.profiles: dict[str, EmulatedProfile] = {}
        self.answers: dict[tuple[str, str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []  # (function, functionCallIdentifier) received
        self.faults: list[Fault] = []
        self.sessions: dict[str, tuple[str, str]] = {}  # transaction id -> (iccid, eid)
        self.sent: list[dict] = []  # notifications and how their delivery went

    def add_profile(self, iccid: str, imsi: str, profile_type: str) -> EmulatedProfile:
        profile = EmulatedProfile(parse_iccid(iccid), imsi, profile_type)
        with self.lock:
            self.profiles[profile.iccid] = profile
        return profile

    # ---- ES2+ ----------------------------------------------------------------------
    def handle(self, function: str, body: Any) -> tuple[int, dict]:
        """(HTTP status, JSON answer) for one ES2+ request, faults and retries included."""
        if not isinstance(body, dict) or not isinstance(body.get("header"), dict):
            return 200, failed(StatusCode("1.1", "2.2", "header is missing"))
        header = body["header"]
        call_id = str(header.get("functionCallIdentifier") or "")
        if not call_id:
            return 200, failed(StatusCode("1.1", "2.2", "functionCallIdentifier is missing"))
        key = (str(header.get("functionRequesterIdentifier")), call_id, function)
        with self.lock:
            self.calls.append((function, call_id))
            fault = next((f for f in self.faults if f.function == function and f.times), None)
            if fault is not None:
                fault.times -= 1
                if not fault.after:
                    return fault.status, {}
            if key not in self.answers:
                self.answers[key] = self._run(function, body)
            answer = self.answers[key]
        return (fault.status, {}) if fault is not None else (200, answer)

    def _run(self, function: str, body: dict) -> dict:
        handler = {"downloadOrder": self._download_order, "confirmOrder": self._confirm_order,
                   "cancelOrder": self._cancel_order, "releaseProfile": self._release_profile}
        try:
            return {"header": response_header(SUCCESS), **handler[function](body)}
        except Refused as exc:
            return failed(exc.code)
        except IllegalTransition as exc:
            return failed(StatusCode(exc.code.subject, exc.code.reason, exc.code.message,
                                     body.get("iccid")))

    def _profile(self, body: dict) -> EmulatedProfile:
        if not body.get("iccid"):
            raise Refused(StatusCode("8.2.1", "2.2", "iccid is missing"))
        try:
            iccid = parse_iccid(str(body["iccid"]))
        except IdentifierError as exc:
            raise Refused(StatusCode("8.2.1", "2.1", str(exc))) from exc
        if iccid not in self.profiles:
            raise Refused(StatusCode("8.2.1", "3.9", f"unknown ICCID {iccid}", iccid))
        return self.profiles[iccid]

    @staticmethod
    def _eid(body: dict) -> str | None:
        if not body.get("eid"):
            return None
        try:
            return parse_eid(str(body["eid"]))
        except IdentifierError as exc:
            raise Refused(StatusCode("8.1.1", "2.1", str(exc))) from exc

    def _move(self, profile: EmulatedProfile, request: Request, **kwargs: Any) -> None:
        after = next_state(profile.state, request, **kwargs)
        profile.history.append(f"{self.clock().isoformat()} {request}: {profile.state} -> {after}")
        profile.state = after

    def _download_order(self, body: dict) -> dict:
        eid = self._eid(body)
        kind = body.get("profileType")
        if body.get("iccid"):
            profile = self._profile(body)
            if kind and kind != profile.profile_type:
                raise Refused(StatusCode("8.2.5", "3.10",
                                         f"{profile.iccid} is {profile.profile_type}"))
        elif kind:
            of_kind = [p for p in self.profiles.values() if p.profile_type == kind]
            if not of_kind:
                raise Refused(StatusCode("8.2.5", "3.9", f"unknown profile type {kind!r}"))
            profile = next((p for p in of_kind if p.state is S.AVAILABLE), None)
            if profile is None:
                raise Refused(StatusCode("8.2.5", "3.7", f"no available profile of type {kind!r}"))
        else:
            raise Refused(StatusCode("8.2.1", "2.2", "give an iccid or a profileType"))
        self._move(profile, Request.DOWNLOAD_ORDER, with_eid=eid is not None)
        profile.eid = eid
        return {"iccid": profile.iccid}

    def _confirm_order(self, body: dict) -> dict:
        profile = self._profile(body)
        eid = self._eid(body)
        if "releaseFlag" not in body:
            raise Refused(StatusCode("1.1", "2.2", "releaseFlag is missing"))
        if eid and profile.eid and eid != profile.eid:
            raise Refused(StatusCode("8.1.1", "3.10", f"profile is linked to EID {profile.eid}"))
        matching_id = body.get("matchingId") or _matching_id()
        if not MATCHING_ID.fullmatch(str(matching_id)):
            raise Refused(StatusCode("8.2.6", "2.1", f"invalid matching ID {matching_id!r}"))
        if any(p.matching_id == matching_id for p in self.profiles.values()):
            raise Refused(StatusCode("8.2.6", "3.3", f"matching ID {matching_id} is in use"))
        self._move(profile, Request.CONFIRM_ORDER, release=bool(body["releaseFlag"]))
        profile.eid = profile.eid or eid
        profile.matching_id = matching_id
        code = body.get("confirmationCode")
        profile.cc_hash = confirmation.hashed_code(str(code)) if code else None
        answer = {"matchingId": matching_id, "smdpAddress": self.address}
        return {**answer, "eid": profile.eid} if profile.eid else answer

    def _cancel_order(self, body: dict) -> dict:
        profile = self._profile(body)
        final = FINAL.get(str(body.get("finalProfileStatusIndicator")))
        if final is None:
            raise Refused(StatusCode("1.1", "2.2" if "finalProfileStatusIndicator" not in body
                                     else "2.1", "finalProfileStatusIndicator: "
                                     "Available or Unavailable"))
        eid = self._eid(body)
        if eid and profile.eid and eid != profile.eid:
            raise Refused(StatusCode("8.1.1", "3.10", f"profile is linked to EID {profile.eid}"))
        if body.get("matchingId") and body["matchingId"] != profile.matching_id:
            raise Refused(StatusCode("8.2.6", "3.10", "matching ID does not match the order"))
        self._move(profile, Request.CANCEL_ORDER, final=final)
        profile.eid = profile.matching_id = profile.cc_hash = None
        return {}

    def _release_profile(self, body: dict) -> dict:
        self._move(self._profile(body), Request.RELEASE_PROFILE)
        return {}

    # ---- the simulated device ---------------------------------------------------------
    def initiate(self, activation_code: str, eid: str) -> dict:
        """Start a download: the device presents the activation code and its EID."""
        try:
            code = parse_activation_code(activation_code)
            eid = parse_eid(eid)
        except IdentifierError as exc:
            raise DeviceError(str(exc), 400) from exc
        if code.smdp_address.lower() != self.address.lower():
            raise DeviceError(f"this SM-DP+ is {self.address}, not {code.smdp_address}", 404)
        with self.lock:
            profile = next((p for p in self.profiles.values()
                            if p.matching_id == code.matching_id), None)
            if profile is None or profile.state is not S.RELEASED:
                raise DeviceError(f"no profile released for matching ID {code.matching_id}", 404)
            if profile.eid and profile.eid != eid:
                raise DeviceError(f"the order is for another EID ({profile.eid})", 403)
            transaction = secrets.token_hex(16)
            self.sessions[transaction] = (profile.iccid, eid)
        return {"transactionId": transaction, "confirmationCodeRequired": bool(profile.cc_hash)}

    def download(self, transaction_id: str, proof: str | None = None,
                 fail: str | None = None) -> dict:
        """Download and install (points 3 and 4); `fail` simulates a failure at either step."""
        with self.lock:
            if transaction_id not in self.sessions:
                raise DeviceError("unknown transaction", 404)
            iccid, eid = self.sessions.pop(transaction_id)
            profile = self.profiles[iccid]
            refused = profile.cc_hash is not None and not (proof and confirmation.proof_matches(
                profile.cc_hash, bytes.fromhex(transaction_id), bytes.fromhex(proof)))
            outbox = []
            if refused:
                outbox.append(self._progress(profile, eid, 2, StatusCode(
                    "8.2.7", "3.8", "confirmation code refused")))
            for point, request, step in ((3, Request.DOWNLOAD, "download"),
                                         (4, Request.INSTALL, "install")):
                if refused:
                    break
                if fail == step:
                    self._move(profile, Request.FAIL)
                    outbox.append(self._progress(profile, eid, point,
                                                 StatusCode("8.2.1", "4.2", f"{step} failed")))
                    break
                self._move(profile, request)
                profile.eid = eid
                outbox.append(self._progress(profile, eid, point))
            state = str(profile.state)
        self._deliver(outbox)
        if refused:
            raise DeviceError("confirmation code refused", 403)
        return {"iccid": iccid, "eid": eid, "state": state}

    def device_action(self, action: str, iccid: str, eid: str) -> dict:
        """enable, disable or delete a profile installed on the device `eid`."""
        with self.lock:
            profile = self.profiles.get(iccid)
            if profile is None or profile.eid != eid or profile.state is not S.INSTALLED:
                raise DeviceError(f"profile {iccid} is not installed on EID {eid}", 404)
            outbox = []
            if action == "delete":
                self._move(profile, Request.DELETE)
                outbox.append(self._progress(profile, eid, 5))
                profile.eid = profile.matching_id = profile.cc_hash = None
                profile.enabled = False
            elif action in ("enable", "disable"):
                profile.enabled = action == "enable"
                profile.history.append(f"{self.clock().isoformat()} {action}d on {eid}")
            else:
                raise DeviceError(f"unknown action {action!r}", 404)
            answer = {"iccid": iccid, "eid": eid, "state": str(profile.state),
                      "enabled": profile.enabled}
        self._deliver(outbox)
        return answer

    def _progress(self, profile: EmulatedProfile, eid: str, point: int,
                  refusal: StatusCode | None = None) -> dict:
        progress = DownloadProgress(profile.iccid, profile.profile_type, self.clock(), point,
                                    FAILED if refusal else SUCCESS, eid, status_code=refusal)
        return notification_body(progress, self.address, secrets.token_hex(8))

    def _deliver(self, outbox: list[dict]) -> None:
        """Post notifications in order, outside the lock (the operator may call back)."""
        for body in outbox:
            record: dict[str, Any] = {"body": body, "delivered": None}
            if self.notify is not None:
                try:
                    record["delivered"] = self.notify(body)
                except Exception as exc:  # the operator being down must not break the device
                    record["delivered"] = f"{type(exc).__name__}: {exc}"
            with self.lock:
                self.sent.append(record)
