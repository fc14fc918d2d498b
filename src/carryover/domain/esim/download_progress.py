"""handleDownloadProgressInfo: the SM-DP+ telling the operator how a download went.

The SM-DP+ posts one notification per step a device reaches (notification
points: 1 eligibility / retry-limit check, 2 confirmation failure, 3 BPP download,
4 BPP installation, 5 profile deleted), each with the step's own status. Parsing
returns errors as values: a body that is not a notification becomes the one ES2+
status code the answer carries (the element's subject, reason 2.2 missing or 2.1
invalid). Points 3, 4 and 5 move the profile (see states); 1 and 2 are history.

A notification's `key` is a digest of what it says, so the same notification
delivered twice (an SM-DP+ retrying after a lost answer) is recognised and
changes nothing the second time.

Every field is bounded before it is looked at (LIMITS: the identifiers' own
sizes, and a documented maximum for free text, docs/esim.md), and so is the
body (MAX_BODY_BYTES, MAX_DEPTH, checked by `nesting_exceeds` before the JSON
is decoded), so what a notification can make the operator store is small.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carryover.domain.esim.identifiers import (
    EID_LENGTH,
    ICCID_LENGTHS,
    IdentifierError,
    parse_eid,
    parse_iccid,
)
from carryover.domain.esim.states import Request
from carryover.domain.esim.status import STATUSES, SUCCESS, WARNING, StatusCode

ELIGIBILITY, CONFIRMATION_FAILURE, BPP_DOWNLOAD, BPP_INSTALLATION, PROFILE_DELETED = 1, 2, 3, 4, 5
POINT_NAMES = {
    ELIGIBILITY: "eligibility and retry limit check",
    CONFIRMATION_FAILURE: "confirmation failure",
    BPP_DOWNLOAD: "BPP download",
    BPP_INSTALLATION: "BPP installation",
    PROFILE_DELETED: "profile deleted",
}
# Subject codes of the elements; the rest of the message is about the request itself.
_SUBJECT = {"iccid": "8.2.1", "profileType": "8.2.5", "eid": "8.1.1"}
REQUESTER = "1.1"

# The largest body and the deepest nesting a notification may have: a real one is
# well under 2 KiB and 3 levels deep (body, notificationPointStatus, statusCodeData).
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_POINT_ID = 999
# Longest text of each field, in characters. EID and ICCID are their identifiers'
# sizes (an ICCID may carry ES2+'s trailing F pad); the rest are free text.
LIMITS = {
    "iccid": max(ICCID_LENGTHS), "eid": EID_LENGTH, "profileType": 64, "timestamp": 40,
    "resultData": 8192, "functionRequesterIdentifier": 256, "functionCallIdentifier": 256,
    "subjectCode": 16, "reasonCode": 16, "subjectIdentifier": 256, "message": 1024,
}


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    iccid: str
    profile_type: str
    timestamp: datetime
    point_id: int
    status: str
    eid: str | None = None
    result_data: str | None = None
    status_code: StatusCode | None = None
    function_call_id: str | None = None

    @property
    def success(self) -> bool:
        return self.status in (SUCCESS, WARNING)

    @property
    def point_name(self) -> str:
        return POINT_NAMES.get(self.point_id, f"notification point {self.point_id}")

    def key(self) -> str:
        """Identical notifications have the same key; any difference in content changes it."""
        code = None if self.status_code is None else [self.status_code.subject,
                                                      self.status_code.reason]
        content = [self.iccid, self.eid, self.profile_type, self.timestamp.isoformat(),
                   self.point_id, self.status, code, self.result_data]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()

    def request(self) -> Request | None:
        """The state change this notification reports, if any."""
        if self.point_id in (BPP_DOWNLOAD, BPP_INSTALLATION) and not self.success:
            return Request.FAIL
        if not self.success:
            return None
        return {BPP_DOWNLOAD: Request.DOWNLOAD, BPP_INSTALLATION: Request.INSTALL,
                PROFILE_DELETED: Request.DELETE}.get(self.point_id)


def _missing(field: str) -> StatusCode:
    return StatusCode(_SUBJECT.get(field, REQUESTER), "2.2", f"{field} is missing")


def _invalid(field: str, why: str) -> StatusCode:
    return StatusCode(_SUBJECT.get(field, REQUESTER), "2.1", f"{field}: {why}")


def _too_long(field: str, value: Any) -> StatusCode | None:
    """Refuses a field longer than LIMITS allows (its length is said, not its text)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > LIMITS[field]:
        return _invalid(field, f"{len(text)} characters; at most {LIMITS[field]}")
    return None


def nesting_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `raw` nests objects and arrays deeper than `limit`.

    Counted on the bytes before decoding (brackets inside strings do not count),
    so a hostile body is refused without the decoder recursing into it.
    """
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _bounded(body: dict) -> StatusCode | None:
    """The first field of `body` (header and status code data included) over its limit."""
    header = body.get("header") or {}
    point_status = body.get("notificationPointStatus")
    code = point_status.get("statusCodeData") if isinstance(point_status, dict) else None
    fields = [(name, body.get(name)) for name in ("iccid", "eid", "profileType", "timestamp",
                                                   "resultData")]
    fields += [(name, header.get(name)) for name in ("functionRequesterIdentifier",
                                                     "functionCallIdentifier")]
    if isinstance(code, dict):
        fields += [(name, code.get(name)) for name in ("subjectCode", "reasonCode",
                                                       "subjectIdentifier", "message")]
    for name, value in fields:
        if value is not None and (refused := _too_long(name, value)) is not None:
            return refused
    return None


def parse_timestamp(text: Any) -> datetime | None:
    """A W3C date-time with its offset (`Z` or +hh:mm), else None."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    return value if value.tzinfo is not None and value.utcoffset() is not None else None


def parse_download_progress(body: Any) -> DownloadProgress | StatusCode:
    """The notification in a decoded JSON body, or the status code that refuses it."""
    if not isinstance(body, dict):
        return StatusCode(REQUESTER, "2.1", "the body is not a JSON object")
    header = body.get("header")
    if header is not None and not isinstance(header, dict):
        return _invalid("header", "not an object")
    if (too_long := _bounded(body)) is not None:
        return too_long
    for field in ("iccid", "profileType", "timestamp", "notificationPointId",
                  "notificationPointStatus"):
        if body.get(field) in (None, ""):
            return _missing(field)
    try:
        iccid = parse_iccid(str(body["iccid"]))
        eid = parse_eid(str(body["eid"])) if body.get("eid") not in (None, "") else None
    except IdentifierError as exc:
        return _invalid(exc.kind, str(exc))
    if not isinstance(body["profileType"], str):
        return _invalid("profileType", "not a string")
    timestamp = parse_timestamp(body["timestamp"])
    if timestamp is None:
        return _invalid("timestamp", f"{body['timestamp']!r} is not a W3C date-time with "
                        "an offset, such as 2026-03-01T12:00:00Z")
    point = body["notificationPointId"]
    if isinstance(point, bool) or not isinstance(point, int | str) or (
            isinstance(point, str) and not (point.isascii() and point.isdigit())):
        return _invalid("notificationPointId", "not an integer")
    if len(str(point)) > len(str(MAX_POINT_ID)) or not 0 <= int(point) <= MAX_POINT_ID:
        return _invalid("notificationPointId", f"not an integer from 0 to {MAX_POINT_ID}")
    point_status = body["notificationPointStatus"]
    status = point_status.get("status") if isinstance(point_status, dict) else None
    if status not in STATUSES:
        return _invalid("notificationPointStatus",
                        f"status {str(status)[:40]!r} is not one of {', '.join(STATUSES)}")
    code = point_status.get("statusCodeData")
    result = body.get("resultData")
    if result is not None:
        try:
            base64.b64decode(str(result), validate=True)
        except (binascii.Error, ValueError):
            return _invalid("resultData", "not base64")
    return DownloadProgress(
        iccid=iccid, profile_type=body["profileType"], timestamp=timestamp,
        point_id=int(point), status=status, eid=eid,
        result_data=None if result is None else str(result),
        status_code=None if code is None else StatusCode.from_json(code),
        function_call_id=(header or {}).get("functionCallIdentifier"))


def notification_body(progress: DownloadProgress, requester: str, call_id: str) -> dict:
    """The JSON an SM-DP+ posts for `progress` (the emulator sends it; tests build it)."""
    point_status: dict[str, Any] = {"status": progress.status}
    if progress.status_code is not None:
        point_status["statusCodeData"] = progress.status_code.as_json()
    body: dict[str, Any] = {
        "header": {"functionRequesterIdentifier": requester, "functionCallIdentifier": call_id},
        "iccid": progress.iccid, "profileType": progress.profile_type,
        "timestamp": progress.timestamp.isoformat().replace("+00:00", "Z"),
        "notificationPointId": progress.point_id, "notificationPointStatus": point_status,
    }
    if progress.eid is not None:
        body["eid"] = progress.eid
    if progress.result_data is not None:
        body["resultData"] = progress.result_data
    return body
