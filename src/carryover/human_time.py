"""The one way an instant is shown to people.

Human output (tables, timelines, one-line confirmations) shows an instant in
the account's local time with its UTC offset, ``2026-01-20 00:00 -05:00``, or
in UTC labelled ``UTC`` when there is no account (API keys, say). JSON output
and the API keep ISO 8601 with the offset (UTC). docs/operations.md ("Time on
the screen") documents the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def local_time(at: datetime | str | None, timezone: str | ZoneInfo | None) -> str:
    """`at` as people read it: local time of `timezone` with its offset, minutes (seconds if any).

    `at` may be a datetime or an ISO 8601 string (what the JSON views hold); no
    timezone, or UTC, is shown as UTC with the label. None is shown as "-".
    """
    if at is None:
        return "-"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:  # never produced by the services; read as UTC, not as local
        at = at.replace(tzinfo=UTC)
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    if zone is None or zone.key in ("UTC", "Etc/UTC"):
        local, label = at.astimezone(UTC), "UTC"
    else:
        local = at.astimezone(zone)
        offset = local.strftime("%z")
        label = f"{offset[:3]}:{offset[3:]}"
    clock = "%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M"
    return f"{local.strftime(clock)} {label}"
