"""The plan catalog as stored: every version of every plan, appended, never updated.

A plan id names a series of versions (`plan_versions`); the `plans` row keeps the
latest body for listing. `PlanRepository.all` reads the whole catalog in one
query with each body as its stored JSON text, which `_parsed` turns into a
validated Plan once per distinct text (docs/semantics.md, "Plan versions", says
when a version is in force).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Text, cast, func, insert, select, update

from carryover.domain.plan_versions import PlanCatalog, PlanVersion
from carryover.domain.plans import Plan, plan_from_mapping
from carryover.store.instants import utc
from carryover.store.tables import plan_versions, plans

PLAN_TEXTS = select(
    plan_versions.c.plan_id.label("id"), plan_versions.c.version,
    cast(plan_versions.c.body, Text).label("body"), plan_versions.c.recorded_at,
    plan_versions.c.effective_at, plan_versions.c.next_boundary_after,
).order_by(plan_versions.c.plan_id, plan_versions.c.version)


@lru_cache(maxsize=1024)
def _parsed(body: str) -> Plan:
    """Plans are re-validated when read; the same stored body always means the same Plan."""
    return plan_from_mapping(json.loads(body))


def plans_from_rows(rows: Iterable[Any]) -> PlanCatalog:
    """The catalog, every version of every plan, from the rows of PLAN_TEXTS."""
    series: dict[str, list[PlanVersion]] = {}
    for row in rows:
        series.setdefault(row.id, []).append(PlanVersion(
            _parsed(row.body), row.version, utc(row.recorded_at), utc(row.effective_at),
            utc(row.next_boundary_after)))
    return PlanCatalog(series)


class PlanRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_version(self, plan_id: str, body: dict, source: str, at: datetime,
                    effective_at: datetime | None = None,
                    next_boundary_after: datetime | None = None) -> int:
        """Append a version to `plan_id`'s series (creating the series as version 1);
        the series row keeps the latest body. Stored versions are never updated."""
        latest = self.conn.execute(
            select(func.max(plan_versions.c.version)).where(plan_versions.c.plan_id == plan_id)
        ).scalar()
        exists = self.conn.execute(select(plans.c.id).where(plans.c.id == plan_id)).first()
        if exists:
            self.conn.execute(update(plans).where(plans.c.id == plan_id)
                              .values(body=body, source=source, loaded_at=at))
        else:
            self.conn.execute(insert(plans).values(id=plan_id, body=body, source=source,
                                                   loaded_at=at))
        version = (latest or 0) + 1
        if version == 1:
            effective_at = next_boundary_after = None  # the first version: always
        self.conn.execute(insert(plan_versions).values(
            plan_id=plan_id, version=version, body=body, source=source, recorded_at=at,
            effective_at=effective_at, next_boundary_after=next_boundary_after))
        return version

    def upsert(self, plan_id: str, body: dict, source: str, at: datetime) -> None:
        """Make `body` the id's latest version, in force from `at` (version 1: always),
        unless it already is; earlier versions stay as they are."""
        versions = self.all().versions(plan_id)
        if versions and versions[-1].plan == plan_from_mapping(body):
            return
        self.add_version(plan_id, body, source, at, effective_at=at)

    def version_rows(self, plan_id: str) -> list[Any]:
        """`plan_id`'s versions, oldest first (body, source and instants)."""
        return self.version_rows_of([plan_id]).get(plan_id, [])

    def version_rows_of(self, plan_ids: Sequence[str]) -> dict[str, list[Any]]:
        """The versions of several plans in one query: id -> rows, oldest first."""
        out: dict[str, list[Any]] = {}
        if not plan_ids:
            return out
        for row in self.conn.execute(select(plan_versions).where(
                plan_versions.c.plan_id.in_(list(plan_ids))).order_by(
                plan_versions.c.plan_id, plan_versions.c.version)):
            out.setdefault(row.plan_id, []).append(row)
        return out

    def all(self) -> PlanCatalog:
        # The body as the stored JSON text: the parse cache is keyed on it, so a plan
        # that did not change costs neither a JSON decode by the driver nor a re-dump.
        return plans_from_rows(self.conn.execute(PLAN_TEXTS))

    def sources(self) -> dict[str, str]:
        return dict(self.conn.execute(select(plans.c.id, plans.c.source)).all())

