"""`esim validate`: what kind of eSIM value a piece of text is, and whether it is valid.

The kind is read from the shape of the text (a `$` or `LPA:` means an activation
code; otherwise the number of digits: 32 an EID, 19 or 20 an ICCID, 15 an IMSI),
then the value is checked as that kind, so a mistyped EID is reported as an EID
with the check that failed rather than as "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from carryover.domain.esim.activation import QR_PREFIX, parse_activation_code
from carryover.domain.esim.identifiers import (
    EID_LENGTH,
    IMSI_LENGTH,
    TELECOM_PREFIX,
    IdentifierError,
    parse_eid,
    parse_iccid,
    parse_imsi,
)

Kind = Literal["eid", "iccid", "imsi", "activation_code", "unknown"]


@dataclass(frozen=True, slots=True)
class Validation:
    value: str
    kind: Kind
    valid: bool
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"value": self.value, "kind": self.kind, "valid": self.valid,
                "reason": self.reason}


def guess_kind(value: str) -> Kind:
    text = value.strip()
    if "$" in text or text[:len(QR_PREFIX)].upper() == QR_PREFIX:
        return "activation_code"
    core = text[:-1] if text[-1:] in ("F", "f") and text[:-1].isdigit() else text
    if not (core.isdigit() or core.startswith(TELECOM_PREFIX)):
        return "unknown"
    if len(core) == EID_LENGTH:
        return "eid"
    if len(core) in (19, 20) or core != text:
        return "iccid"
    if len(core) == IMSI_LENGTH:
        return "imsi"
    # A few digits too many or too few: say which check failed rather than "unknown".
    if core.startswith(TELECOM_PREFIX) and abs(len(core) - EID_LENGTH) <= 3:
        return "eid"
    if core.startswith(TELECOM_PREFIX) and 16 <= len(core) <= 22:
        return "iccid"
    return "unknown"


def classify(value: str) -> Validation:
    kind = guess_kind(value)
    parsers = {"eid": parse_eid, "iccid": parse_iccid, "imsi": parse_imsi,
               "activation_code": parse_activation_code}
    if kind == "unknown":
        return Validation(value, kind, False,
                          "not an EID (32 digits), ICCID (19-20 digits), IMSI (15 digits) "
                          "or activation code (1$<SM-DP+ address>$<MatchingID>)")
    try:
        parsers[kind](value)
    except IdentifierError as exc:
        return Validation(value, kind, False, f"{exc.check} check failed: {exc.detail}")
    return Validation(value, kind, True)
