"""eSIM identifiers: EID, ICCID and IMSI, validated the way their standards define them.

- EID (eUICC identifier, GSMA SGP.29): 32 digits starting 89; the last two are
  check digits under ISO 7064 MOD 97-10, so the whole number mod 97 is 1. Any
  single wrong digit, and any swap of two neighbours, breaks the check.
- ICCID (ITU-T E.118): 19 or 20 digits starting 89 (telecom), the last a Luhn
  check digit. ES2+ and SIM files pad a 19-digit ICCID to 20 nibbles with a
  trailing F; the pad is not part of the number and is stripped.
- IMSI (ITU-T E.212): 15 digits = MCC (3) + MNC (2 or 3) + MSIN. Nothing in the
  number says how long the MNC is (the SIM's EF_AD does); MNC_LENGTHS gives the
  length most networks of a country code use, and callers that know better say so.

Every refusal is an IdentifierError naming the identifier and the check that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

EID_LENGTH = 32
ICCID_LENGTHS = (19, 20)
IMSI_LENGTH = 15
TELECOM_PREFIX = "89"  # E.118 major industry identifier for telecommunications

# MCCs whose networks (mostly) use three-digit MNCs; every other MCC uses two.
# Mixed countries (India 405, Malaysia 502) list the length most of their networks use.
MNC_LENGTHS: dict[str, int] = {
    **{mcc: 3 for mcc in (
        "302",  # Canada
        "310", "311", "312", "313", "314", "315", "316",  # United States, Guam
        "330",  # Puerto Rico
        "334",  # Mexico
        "338",  # Jamaica
        "342", "344", "346", "348", "352", "354", "356", "358", "360",  # Caribbean
        "365", "366", "376",  # Anguilla, Dominica, Turks and Caicos
        "405",  # India (405-xxx; 404 uses two digits)
        "708",  # Honduras
        "714",  # Panama
        "722",  # Argentina
        "732",  # Colombia
        "750",  # Falkland Islands
    )},
}
DEFAULT_MNC_LENGTH = 2
# MCC 001 is the ITU test network (001-01 in most labs), 901 international
# networks, 999 private networks; 2xx-7xx are countries.
SPECIAL_MCCS = frozenset({"001", "901", "999"})


LABELS = {"eid": "EID", "iccid": "ICCID", "imsi": "IMSI", "activation_code": "activation code"}


class IdentifierError(ValueError):
    """`value` is not a valid `kind` (a key of LABELS): `check` names the test that failed."""

    def __init__(self, kind: str, value: str, check: str, detail: str) -> None:
        self.kind = kind
        self.value = value
        self.check = check
        self.detail = detail
        super().__init__(f"{LABELS.get(kind, kind)} {value!r}: {check} check failed: {detail}")


@dataclass(frozen=True, slots=True)
class Imsi:
    mcc: str
    mnc: str
    msin: str

    def __str__(self) -> str:
        return f"{self.mcc}{self.mnc}{self.msin}"


def luhn_check_digit(payload: str) -> str:
    """The Luhn digit that makes `payload` + digit valid."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # these are doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def eid_check_digits(first30: str) -> str:
    """ISO 7064 MOD 97-10: the two digits that make the 32-digit number mod 97 equal 1."""
    return f"{98 - int(first30 + '00') % 97:02d}"


def _digits(kind: str, value: str, text: str) -> None:
    if not text.isascii() or not text.isdigit():
        bad = next((c for c in text if not ("0" <= c <= "9")), "")
        raise IdentifierError(kind, value, "digits", f"{bad!r} is not a digit")


def parse_eid(value: str) -> str:
    """The EID in `value` (surrounding spaces ignored), or IdentifierError."""
    text = value.strip()
    _digits("eid", value, text)
    if len(text) != EID_LENGTH:
        raise IdentifierError("eid", value, "length",
                              f"{len(text)} digits; an EID has {EID_LENGTH}")
    if not text.startswith(TELECOM_PREFIX):
        raise IdentifierError("eid", value, "prefix",
                              f"starts {text[:2]}; an EID starts {TELECOM_PREFIX}")
    remainder = int(text) % 97
    if remainder != 1:
        raise IdentifierError("eid", value, "MOD 97-10",
                              f"the number mod 97 is {remainder}, not 1 "
                              f"(for these 30 digits the check digits are "
                              f"{eid_check_digits(text[:30])})")
    return text


def parse_iccid(value: str) -> str:
    """The ICCID in `value`, without an ES2+ trailing F pad, or IdentifierError."""
    text = value.strip()
    if text[-1:] in ("F", "f"):
        text = text[:-1]
    _digits("iccid", value, text)
    if len(text) not in ICCID_LENGTHS:
        raise IdentifierError("iccid", value, "length",
                              f"{len(text)} digits; an ICCID has 19 or 20")
    if not text.startswith(TELECOM_PREFIX):
        raise IdentifierError("iccid", value, "prefix",
                              f"starts {text[:2]}; an ICCID starts {TELECOM_PREFIX}")
    if not luhn_valid(text):
        raise IdentifierError("iccid", value, "Luhn",
                              f"check digit is {text[-1]}, the Luhn digit of the rest is "
                              f"{luhn_check_digit(text[:-1])}")
    return text


def parse_imsi(value: str, mnc_length: int | None = None) -> Imsi:
    """The IMSI in `value`, split into MCC, MNC and MSIN, or IdentifierError.

    `mnc_length` (2 or 3) overrides MNC_LENGTHS when the caller knows it.
    """
    text = value.strip()
    _digits("imsi", value, text)
    if len(text) != IMSI_LENGTH:
        raise IdentifierError("imsi", value, "length",
                              f"{len(text)} digits; an IMSI has {IMSI_LENGTH}")
    mcc = text[:3]
    if mcc not in SPECIAL_MCCS and mcc[0] not in "234567":
        raise IdentifierError("imsi", value, "MCC",
                              f"{mcc} is not a country code (2xx-7xx) nor 001, 901 or 999")
    length = mnc_length if mnc_length is not None else MNC_LENGTHS.get(mcc, DEFAULT_MNC_LENGTH)
    if length not in (2, 3):
        raise ValueError(f"an MNC has 2 or 3 digits, not {length}")
    return Imsi(mcc, text[3:3 + length], text[3 + length:])


def format_iccid_padded(iccid: str) -> str:
    """The 20-character form ES2+ may carry: a 19-digit ICCID gets its trailing F."""
    return iccid + "F" if len(iccid) == 19 else iccid
