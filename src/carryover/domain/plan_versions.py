"""Plan versions: a plan id names a series of immutable versions (docs/semantics.md).

Loading a different plan under an existing id adds a version; it never replaces
one. Each version is in force from an instant:

- version 1 from the beginning of time;
- a later version either from a fixed instant (`effective_at`), or from each
  account's first cycle boundary after the version was recorded
  (`next_boundary_after`), so every line switches at its own boundary.

`PlanCatalog` is what a fold asks: `catalog.at(plan_id, t, calendar)` is the
version in force at t for an account on `calendar`. As a Mapping it answers with
each id's latest version (what listings and "is this id known" need). Folding the
same inputs with the same catalog gives the same balances at every instant, and a
version added later with an instant after every folded input changes nothing
already folded: that is why re-loading a plan cannot rewrite history.

Pure: no clock; the instants come with the versions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from carryover.domain.cycles import CycleCalendar
from carryover.domain.plans import Plan


@dataclass(frozen=True, slots=True)
class PlanVersion:
    plan: Plan
    version: int  # 1, 2, ... per plan id
    recorded_at: datetime | None = None  # when it was loaded (None: not recorded)
    effective_at: datetime | None = None  # a fixed start; None with no rule: always
    next_boundary_after: datetime | None = None  # start: each account's next boundary

    def __post_init__(self) -> None:
        if self.effective_at is not None and self.next_boundary_after is not None:
            raise ValueError("a version starts at an instant or at the next boundary, not both")

    def starts(self, calendar: CycleCalendar) -> datetime | None:
        """When this version comes into force for an account on `calendar` (None: always)."""
        if self.next_boundary_after is not None:
            return calendar.cycle_at(self.next_boundary_after)[1]
        return self.effective_at


class PlanCatalog(Mapping[str, Plan]):
    """Every plan id and its versions, oldest first."""

    def __init__(self, versions: Mapping[str, list[PlanVersion]] | None = None) -> None:
        self._versions: dict[str, tuple[PlanVersion, ...]] = {}
        for plan_id, series in sorted((versions or {}).items()):
            ordered = tuple(sorted(series, key=lambda v: v.version))
            if not ordered:
                continue
            if [v.version for v in ordered] != list(range(1, len(ordered) + 1)):
                raise ValueError(f"plan {plan_id!r}: versions must be 1..n")
            self._versions[plan_id] = ordered

    @classmethod
    def of(cls, plans: Mapping[str, Plan]) -> PlanCatalog:
        """A catalog from plain plans (one version each); a catalog is returned as is."""
        if isinstance(plans, PlanCatalog):
            return plans
        return cls({pid: [PlanVersion(plan, 1)] for pid, plan in plans.items()})

    # ---- Mapping: the latest version of each id -----------------------------------
    def __getitem__(self, plan_id: str) -> Plan:
        return self._versions[plan_id][-1].plan

    def __iter__(self) -> Iterator[str]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __repr__(self) -> str:
        return f"PlanCatalog({ {k: len(v) for k, v in self._versions.items()} })"

    # ---- versions -----------------------------------------------------------------
    def versions(self, plan_id: str) -> tuple[PlanVersion, ...]:
        return self._versions.get(plan_id, ())

    def at(self, plan_id: str, t: datetime | None, calendar: CycleCalendar) -> Plan:
        """The version of `plan_id` in force at t on `calendar` (the latest for t None)."""
        series = self._versions[plan_id]
        if t is None or len(series) == 1:
            return series[-1].plan
        chosen = series[0]
        for version in series[1:]:
            start = version.starts(calendar)
            # Versions are in force in their order; a later version that starts
            # earlier than one before it takes over from its own start on.
            if start is None or start <= t:
                chosen = version
        return chosen.plan

    def with_version(self, version: PlanVersion) -> PlanCatalog:
        """A new catalog with `version` appended to its id's series."""
        series = {k: list(v) for k, v in self._versions.items()}
        series.setdefault(version.plan.id, []).append(version)
        return PlanCatalog(series)
