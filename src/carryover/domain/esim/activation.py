"""Activation codes: what the subscriber scans to download a profile (SGP.22 section 4.1).

    1$<SM-DP+ address>$<MatchingID>[$<SM-DP+ OID>[$<confirmation code required flag>]]

The format is "1"; the SM-DP+ address is an FQDN; the MatchingID (AC_Token)
uses A-Z, 0-9 and "-"; the OID is dotted decimal; the flag, when present, is
"1" and tells the device to ask for a confirmation code. A flag without an OID
leaves the OID field empty (`1$smdp.example$ABC$$1`). In a QR code the text is
prefixed `LPA:`; parsing accepts it with or without.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carryover.domain.esim.identifiers import IdentifierError

AC_FORMAT = "1"
QR_PREFIX = "LPA:"
MATCHING_ID = re.compile(r"[A-Z0-9-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
MAX_FQDN = 253
MAX_MATCHING_ID = 255


def _fail(value: str, check: str, detail: str) -> IdentifierError:
    return IdentifierError("activation_code", value, check, detail)


def check_fqdn(address: str) -> str | None:
    """Why `address` is not an FQDN, or None when it is one."""
    if not address:
        return "the SM-DP+ address is empty"
    if len(address) > MAX_FQDN:
        return f"the SM-DP+ address has {len(address)} characters (at most {MAX_FQDN})"
    bad = next((label for label in address.rstrip(".").split(".")
                if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        return (f"the SM-DP+ address {address!r} is not an FQDN: label {bad!r} "
                "(letters, digits and inner hyphens, 1 to 63 characters)")
    return None


def check_matching_id(matching_id: str) -> str | None:
    """Why `matching_id` is not a MatchingID, or None when it is one."""
    if not matching_id:
        return "the MatchingID is empty"
    if len(matching_id) > MAX_MATCHING_ID:
        return f"the MatchingID has {len(matching_id)} characters (at most {MAX_MATCHING_ID})"
    if not MATCHING_ID.fullmatch(matching_id):
        bad = next(c for c in matching_id if not MATCHING_ID.fullmatch(c))
        return f"the MatchingID {matching_id!r} has {bad!r}: only A-Z, 0-9 and '-' are allowed"
    return None


@dataclass(frozen=True, slots=True)
class ActivationCode:
    smdp_address: str
    matching_id: str
    oid: str | None = None
    confirmation_code_required: bool = False

    def __post_init__(self) -> None:
        text = f"{AC_FORMAT}${self.smdp_address}${self.matching_id}"
        for problem in (check_fqdn(self.smdp_address), check_matching_id(self.matching_id)):
            if problem:
                raise _fail(text, "field", problem)
        if self.oid is not None and not _OID.fullmatch(self.oid):
            raise _fail(text, "OID", f"{self.oid!r} is not a dotted-decimal OID")

    def format(self) -> str:
        """The activation code text, as entered by hand."""
        fields = [AC_FORMAT, self.smdp_address, self.matching_id]
        if self.oid is not None or self.confirmation_code_required:
            fields.append(self.oid or "")
        if self.confirmation_code_required:
            fields.append("1")
        return "$".join(fields)

    def qr_text(self) -> str:
        """What the QR code holds: the code with the `LPA:` prefix."""
        return QR_PREFIX + self.format()

    def __str__(self) -> str:
        return self.format()


def parse_activation_code(value: str) -> ActivationCode:
    """The ActivationCode in `value` (with or without `LPA:`), or IdentifierError."""
    text = value.strip()
    if text[:len(QR_PREFIX)].upper() == QR_PREFIX:
        text = text[len(QR_PREFIX):]
    fields = text.split("$")
    if len(fields) < 3:
        raise _fail(value, "fields", f"{len(fields)} '$'-separated fields; an activation code "
                    "has 3 to 5: 1$<SM-DP+ address>$<MatchingID>[$<OID>[$<flag>]]")
    if len(fields) > 5:
        raise _fail(value, "fields", f"{len(fields)} '$'-separated fields; at most 5")
    if fields[0] != AC_FORMAT:
        raise _fail(value, "format", f"AC format {fields[0]!r}; only {AC_FORMAT!r} is defined")
    for check, problem in (("SM-DP+ address", check_fqdn(fields[1])),
                           ("MatchingID", check_matching_id(fields[2]))):
        if problem:
            raise _fail(value, check, problem)
    oid = fields[3] if len(fields) > 3 and fields[3] else None
    if oid is not None and not _OID.fullmatch(oid):
        raise _fail(value, "OID", f"{oid!r} is not a dotted-decimal OID such as 1.3.6.1.4.1")
    flag = fields[4] if len(fields) > 4 else ""
    if flag not in ("", "1"):
        raise _fail(value, "confirmation code flag",
                    f"{flag!r}; the flag is '1' when present")
    return ActivationCode(fields[1], fields[2], oid, flag == "1")
