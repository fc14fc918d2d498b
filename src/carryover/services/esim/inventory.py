"""Use cases of the profile inventory: import a vendor batch, list profiles, count stock.

An import is all or nothing: every record is checked against the others and
against the database first, and one bad record (an ICCID or IMSI already held)
keeps the whole batch out, with every problem reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carryover.domain.esim.inventory import LowStock, ProfileRecord, low_stock
from carryover.domain.esim.states import ProfileState
from carryover.services.errors import ServiceError
from carryover.services.esim.ports import EsimUnit


class InventoryRejected(ServiceError):
    """A batch that cannot be imported; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Stock:
    counts: dict[str, dict[str, int]]  # profile type -> state -> count
    low: list[LowStock]


def import_profiles(uow: EsimUnit, records: list[ProfileRecord], at: datetime,
                    source: str = "import") -> int:
    with uow:
        repo = uow.esim
        iccids, imsis = repo.known((r.iccid for r in records), (r.imsi for r in records))
        problems = [f"{source}: ICCID {r.iccid} is already in the inventory"
                    for r in records if r.iccid in iccids]
        problems += [f"{source}: IMSI {r.imsi} is already in the inventory"
                     for r in records if r.imsi in imsis]
        if problems:
            raise InventoryRejected(problems)
        repo.add_profiles([{"iccid": r.iccid, "imsi": r.imsi, "profile_type": r.profile_type}
                           for r in records], at)
        for r in records:
            repo.add_event(r.iccid, at, "operator", "import", None, ProfileState.AVAILABLE,
                           {"source": source})
        uow.commit()
        return len(records)


def list_profiles(uow: EsimUnit, state: str | None = None) -> list[dict]:
    if state is not None and state not in set(ProfileState):
        raise ServiceError(f"unknown state {state!r}; one of: {', '.join(ProfileState)}")
    with uow:
        repo = uow.esim
        rows = repo.profiles(state)
        holders = {row.iccid: row.line_id for row in repo.orders() if row.closed_at is None}
        return [{"iccid": r.iccid, "imsi": r.imsi, "profile_type": r.profile_type,
                 "state": r.state, "eid": r.eid, "line": holders.get(r.iccid),
                 "updated_at": r.updated_at.isoformat()} for r in rows]


def stock(uow: EsimUnit, threshold: int) -> Stock:
    """Counts per type and state (`reserved`: available but held by an order in progress)."""
    with uow:
        counts = uow.esim.counts()
    return Stock(counts, low_stock(counts, threshold))
