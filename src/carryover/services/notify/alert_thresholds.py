"""A line's alert thresholds: the percentages of its data allowance its usage notices
fire at (outbox kinds usage_<pct>, docs/api.md "Webhooks").

A subscriber picks them for its own lines (the portal, PUT
/v1/lines/{line}/alert-thresholds, `carryover` has no flag for it); a line that picked
none has the defaults, 50, 80 and 100 %. The choice is checked by the domain
(carryover.domain.notices.alert_thresholds) and stored on the line; every path that
decides notices (a single event, a value batch, an ingest chunk, an Nchf batch) reads
it with the line. A change is not a ledger input: it moves no byte and has no
effective instant; it holds from the next decision on. The notices that hold with the
new thresholds are offered at once, so a threshold picked below the line's usage
fires now, not at its next event; each kind still fires once per line per cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from carryover.domain.notices import DEFAULT_THRESHOLDS, ThresholdError, alert_thresholds
from carryover.services.errors import NotFound, ServiceError
from carryover.services.notify.notices import emit_notifications

if TYPE_CHECKING:
    from carryover.services.notify.ports import ThresholdUnit


def _line(uow: ThresholdUnit, ident: str):
    row = uow.accounts.find_line(ident)
    if row is None:
        raise NotFound(f"unknown line {ident!r} (give a line id, an MSISDN or an IMSI)")
    return row


def view(line: str, stored: Iterable[int] | None) -> dict:
    picked = stored is not None
    return {"line": line, "thresholds": list(stored if picked else DEFAULT_THRESHOLDS),
            "default": not picked}


def thresholds(uow: ThresholdUnit, line: str) -> dict:
    """{"line", "thresholds" (ascending percentages), "default" (true: none picked)}."""
    with uow.reading() as reading:
        row = _line(reading, line)
        return view(row.id, reading.accounts.alert_thresholds(row.id))


def set_thresholds(uow: ThresholdUnit, line: str, values: Iterable[object] | None) -> dict:
    """Keep the line's alert thresholds (None: back to the defaults); the new view."""
    try:
        picked = None if values is None else list(alert_thresholds(values))
    except ThresholdError as exc:
        raise ServiceError(str(exc)) from None
    with uow:
        row = _line(uow, line)
        uow.accounts.lock_account(row.account_id)
        uow.accounts.set_alert_thresholds(row.account_id, row.id, picked)
        emit_notifications(uow, [row.account_id])
        uow.commit()
    return view(row.id, picked)
