"""Inputs to JSON and back, for the `inputs` table and replays.

Inputs are frozen dataclasses of the domain; this module turns them into plain
JSON mappings (instants as ISO strings, units as their names) and back, so a
stored history replays into exactly the inputs that were applied.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from carryover.domain.inputs import ChangePlan, Gift, Input, OpenLine, SetLimit, TopUp, Usage
from carryover.domain.units import Unit

KINDS: dict[str, type] = {
    "open": OpenLine, "change_plan": ChangePlan, "limit": SetLimit,
    "topup": TopUp, "gift": Gift, "usage": Usage,
}
KIND_OF = {cls: name for name, cls in KINDS.items()}
_INSTANTS = {"at", "received_at"}


def encode(item: Input) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Unit):
            value = str(value)
        body[f.name] = value
    return KIND_OF[type(item)], body


def decode(kind: str, body: dict[str, Any]) -> Input:
    cls = KINDS[kind]
    values = dict(body)
    for name in _INSTANTS & set(values):
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    if "unit" in values:
        values["unit"] = Unit(values["unit"])
    return cls(**values)
