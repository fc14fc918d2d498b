"""The operator's stock of eSIM profiles: records to import and the low-stock rule.

A profile record is what a vendor's inventory file says about one profile:
ICCID, IMSI and profile type. Stock is counted per profile type; a type with
fewer available profiles than the threshold is low, so the operator reorders
before a subscriber's download fails for want of a profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from carryover.domain.esim.identifiers import IdentifierError, parse_iccid, parse_imsi

MAX_PROFILE_TYPE = 64


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    iccid: str
    imsi: str
    profile_type: str


def profile_record(iccid: str, imsi: str, profile_type: str) -> ProfileRecord | list[str]:
    """A checked record, or every problem with it (errors as values)."""
    problems: list[str] = []
    checked: dict[str, str] = {}
    for field, parse, value in (("iccid", parse_iccid, iccid), ("imsi", parse_imsi, imsi)):
        try:
            checked[field] = str(parse(value))
        except IdentifierError as exc:
            problems.append(f"{field}: {exc.check} check failed: {exc.detail}")
    kind = profile_type.strip()
    if not kind:
        problems.append("profile_type: empty")
    elif len(kind) > MAX_PROFILE_TYPE:
        problems.append(f"profile_type: longer than {MAX_PROFILE_TYPE} characters")
    if problems:
        return problems
    return ProfileRecord(checked["iccid"], checked["imsi"], kind)


@dataclass(frozen=True, slots=True)
class LowStock:
    profile_type: str
    available: int
    threshold: int

    def message(self) -> str:
        return (f"low stock: profile type {self.profile_type} has {self.available} available "
                f"profile{'s' if self.available != 1 else ''} (threshold {self.threshold})")


def low_stock(counts: dict[str, dict[str, int]], threshold: int) -> list[LowStock]:
    """Types whose available count is under `threshold`, by name (counts: type -> state -> n)."""
    return [LowStock(kind, by_state.get("available", 0), threshold)
            for kind, by_state in sorted(counts.items())
            if by_state.get("available", 0) < threshold]
