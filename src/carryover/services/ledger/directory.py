"""Reads for the API: plans, accounts and lines, page by page, within a caller's scope.

`scope` is the one account a caller may see (a subscriber key's account) or None
(an operator). Anything outside the scope is reported exactly like something
that does not exist, with the same NotFound message, so a caller cannot tell
the two apart. Pages are ordered by id and continue after the last id seen. Each
read is one `with uow:` block of the unit of work it is given
(services.ledger.ports.LedgerUnit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carryover.services.errors import NotFound

if TYPE_CHECKING:
    from carryover.services.ledger.ports import LedgerUnit


def _account(row: Any, lines: list[Any]) -> dict:
    return {"id": row.id, "name": row.name, "cycle_day": row.cycle_day,
            "timezone": row.timezone, "pool_plan": row.pool_plan_id,
            "created_at": row.created_at.isoformat(), "lines": [r.id for r in lines]}


def _line(row: Any, account_name: str) -> dict:
    return {"id": row.id, "account": account_name, "msisdn": row.msisdn, "imsi": row.imsi,
            "plan": row.plan_id, "pending_plan": row.pending_plan, "member": bool(row.member),
            "opened_at": row.opened_at.isoformat()}


def unknown_line(ident: str) -> NotFound:
    # The same words as ledger_ops: a line outside the scope reads as no line at all.
    return NotFound(f"unknown line {ident!r} (give a line id, an MSISDN or an IMSI)")


def account(uow: LedgerUnit, name: str, scope: int | None = None) -> dict:
    with uow:
        row = uow.accounts.account_by_name(name)
        if row is None or (scope is not None and row.id != scope):
            raise NotFound(f"unknown account {name!r}")
        return _account(row, uow.accounts.account_lines(row.id))


def line(uow: LedgerUnit, ident: str, scope: int | None = None) -> dict:
    """A line by id, MSISDN or IMSI, if the scope may see it."""
    with uow:
        row = uow.accounts.find_line(ident)
        if row is None or (scope is not None and row.account_id != scope):
            raise unknown_line(ident)
        name = uow.accounts.account(row.account_id).name
        return _line(row, name)


def lines_page(uow: LedgerUnit, after: str | None, limit: int, scope: int | None = None,
               account_filter: str | None = None,
               plan_filter: str | None = None) -> tuple[list[dict], str | None]:
    """Up to `limit` lines after the id `after`, and the id to continue after (or None)."""
    with uow:
        account_id = scope
        if account_filter is not None:
            row = uow.accounts.account_by_name(account_filter)
            if row is None or (scope is not None and row.id != scope):
                raise NotFound(f"unknown account {account_filter!r}")
            account_id = row.id
        rows = uow.directory.lines_page(account_id, after, limit + 1, plan_filter)
    more = len(rows) > limit
    rows = rows[:limit]
    return [_line(r, r.account_name) for r in rows], (rows[-1].id if more else None)


def accounts_page(uow: LedgerUnit, after: str | None, limit: int, timezone: str | None = None,
                  family: bool | None = None) -> tuple[list[dict], str | None]:
    """Up to `limit` accounts by name after `after`, and the name to continue after (or None)."""
    with uow:
        rows = uow.directory.accounts_page(after, limit + 1, timezone, family)
    more = len(rows) > limit
    rows = rows[:limit]
    return ([{"id": r.id, "name": r.name, "cycle_day": r.cycle_day, "timezone": r.timezone,
              "pool_plan": r.pool_plan_id, "created_at": r.created_at.isoformat(),
              "lines": r.line_count} for r in rows],
            rows[-1].name if more else None)


def _version(row: Any) -> dict:
    if row.next_boundary_after is not None:
        effective: dict = {"next_boundary_after": row.next_boundary_after.isoformat()}
    elif row.effective_at is not None:
        effective = {"at": row.effective_at.isoformat()}
    else:
        effective = {"always": True}
    return {"version": row.version, "source": row.source,
            "recorded_at": row.recorded_at.isoformat(), "effective": effective,
            "definition": row.body}


def _plan(row: Any, versions: list[Any]) -> dict:
    body = row.body
    return {"id": row.id, "name": body.get("name", row.id), "kind": body.get("kind"),
            "source": row.source, "loaded_at": row.loaded_at.isoformat(), "definition": body,
            "version": versions[-1].version if versions else 1,
            "versions": [_version(v) for v in versions]}


def plans_page(uow: LedgerUnit, after: str | None, limit: int) -> tuple[list[dict], str | None]:
    with uow:
        rows = uow.directory.plans_page(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        versions = uow.plans.version_rows_of([r.id for r in rows])
    return [_plan(r, versions.get(r.id, [])) for r in rows], (rows[-1].id if more else None)


def plan(uow: LedgerUnit, plan_id: str) -> dict:
    with uow:
        row = uow.directory.plan(plan_id)
        versions = uow.plans.version_rows(plan_id)
    if row is None:
        raise NotFound(f"unknown plan {plan_id!r}")
    return _plan(row, versions)
