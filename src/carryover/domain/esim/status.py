"""ES2+ function execution status: how each side says whether a function worked.

Every ES2+ response carries `header.functionExecutionStatus` with a status
(Executed-Success, Executed-WithWarning, Failed, Expired) and, unless it is a
plain success, `statusCodeData`: a subject code (what the problem is about: the
EID, the ICCID, the profile type...) and a reason code (why: unknown, already
in use, invalid transition...), as listed in SGP.22 and specs/ES2PLUS.md.
A Failed or Expired status becomes a FunctionFailed error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ES2+ requests and answers carry the version of the protocol in this HTTP header.
ADMIN_PROTOCOL_HEADER = "X-Admin-Protocol"
ADMIN_PROTOCOL = "gsma/rsp/v2.5.0"
SUCCESS = "Executed-Success"
WARNING = "Executed-WithWarning"
FAILED = "Failed"
EXPIRED = "Expired"
STATUSES = (SUCCESS, WARNING, FAILED, EXPIRED)

SUBJECTS = {
    "1.1": "function requester",
    "1.2": "function provider",
    "8.1.1": "EID",
    "8.2.1": "profile ICCID",
    "8.2.5": "profile type",
    "8.2.6": "matching ID",
    "8.2.7": "confirmation code",
    "8.9": "SM-DS",
}
REASONS = {
    "1.2": "not allowed",
    "2.1": "invalid",
    "2.2": "mandatory element missing",
    "3.3": "already in use",
    "3.5": "invalid transition",
    "3.7": "unavailable",
    "3.8": "refused",
    "3.9": "unknown",
    "3.10": "invalid association",
    "4.2": "execution error",
    "5.1": "inaccessible",
}


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One statusCodeData: subject and reason codes, and what the sender adds."""

    subject: str
    reason: str
    message: str = ""
    subject_identifier: str | None = None

    def describe(self) -> str:
        subject = SUBJECTS.get(self.subject, "subject")
        reason = REASONS.get(self.reason, "reason")
        text = f"{self.subject} {subject} / {self.reason} {reason}"
        return f"{text}: {self.message}" if self.message else text

    def as_json(self) -> dict[str, str]:
        data = {"subjectCode": self.subject, "reasonCode": self.reason}
        if self.subject_identifier is not None:
            data["subjectIdentifier"] = self.subject_identifier
        if self.message:
            data["message"] = self.message
        return data

    @classmethod
    def from_json(cls, data: Any) -> StatusCode:
        if not isinstance(data, dict):
            return cls("?", "?", f"statusCodeData is {type(data).__name__}, not an object")
        return cls(str(data.get("subjectCode", "?")), str(data.get("reasonCode", "?")),
                   str(data.get("message", "") or ""), data.get("subjectIdentifier"))


class FunctionFailed(Exception):
    """An ES2+ function answered Failed or Expired; `code` says about what and why."""

    def __init__(self, function: str, status: str, code: StatusCode | None) -> None:
        self.function = function
        self.status = status
        self.code = code
        detail = code.describe() if code is not None else "no statusCodeData"
        super().__init__(f"ES2+ {function} {status}: {detail}")

    @property
    def codes(self) -> tuple[str, str] | None:
        return None if self.code is None else (self.code.subject, self.code.reason)


def response_header(status: str = SUCCESS, code: StatusCode | None = None) -> dict[str, Any]:
    """The `header` object of an ES2+ response."""
    execution: dict[str, Any] = {"status": status}
    if code is not None:
        execution["statusCodeData"] = code.as_json()
    return {"functionExecutionStatus": execution}


def failed(code: StatusCode) -> dict[str, Any]:
    """A whole ES2+ response body that reports `code` as Failed."""
    return {"header": response_header(FAILED, code)}
