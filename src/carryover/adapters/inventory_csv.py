"""Profile inventory files: the CSV a profile vendor delivers with a batch of eSIM profiles.

One header row naming at least `iccid`, `imsi` and `profile_type` (any order,
any case; other columns are ignored), then one profile per row. Reading reports
every bad row at once, as `FILE:LINE: field: why`, and a file with any bad row
yields no records, so a batch is imported whole or not at all.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from carryover.domain.esim.inventory import ProfileRecord, profile_record

COLUMNS = ("iccid", "imsi", "profile_type")


def read_inventory_file(path: Path) -> tuple[list[ProfileRecord], list[str]]:
    """read_inventory of a file (UTF-8, a byte-order mark allowed); one that cannot be
    read is one error naming it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: {getattr(exc, 'strerror', None) or exc}"]
    return read_inventory(text, str(path))


def read_inventory(text: str, source: str) -> tuple[list[ProfileRecord], list[str]]:
    """(records, errors): the records only when there are no errors."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], [f"{source}: empty file; expected a header row: {','.join(COLUMNS)}"]
    names = [name.strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        return [], [f"{source}:1: header lacks {', '.join(missing)} (found: {', '.join(names)})"]
    where = {column: names.index(column) for column in COLUMNS}
    records: list[ProfileRecord] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            errors.append(f"{source}:{number}: {len(row)} columns, the header has {len(names)}")
            continue
        checked = profile_record(*(row[where[column]] for column in COLUMNS))
        if isinstance(checked, list):
            errors.extend(f"{source}:{number}: {problem}" for problem in checked)
            continue
        for field in ("iccid", "imsi"):
            value = getattr(checked, field)
            if (field, value) in seen:
                errors.append(f"{source}:{number}: {field} {value} repeats line "
                              f"{seen[(field, value)]}")
            seen[(field, value)] = number
        records.append(checked)
    if not records and not errors:
        errors.append(f"{source}: no profiles after the header")
    return ([] if errors else records), errors
