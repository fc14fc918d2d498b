"""Rich renderings shared by several commands; instants through human_time.local_time."""

from __future__ import annotations

from rich.table import Table

from carryover.domain.statement import Statement
from carryover.domain.units import format_amount
from carryover.human_time import local_time


def statement_tables(stmt: Statement, timezone: str | None) -> list[Table]:
    """One table per unit: the balance reconciliation, then the usage reconciliation."""
    tables = []
    for unit, s in stmt.units.items():
        title = (f"{stmt.line} {unit}: cycle {local_time(stmt.start, timezone)} .. "
                 f"{local_time(stmt.end, timezone)}")
        table = Table(title=title, min_width=len(title))  # the cycle on one line
        table.add_column("item")
        table.add_column("amount", justify="right")
        rows = [("opening balance", s.opening), *s.flows.items(), ("closing balance", s.closing),
                ("balance check (0 = reconciled)", s.balance_check), ("used", s.used),
                ("from own buckets", s.debited_own), ("from the pool", s.debited_pool),
                ("overage", s.overage), ("usage check (0 = reconciled)", s.usage_check)]
        for label, value in rows:
            table.add_row(label.replace("_", " "), format_amount(value, unit))
        if s.charge:
            table.add_row("overage charge", s.charge)
        tables.append(table)
    if stmt.changes:
        # Who made each change and when it was recorded: a back-dated one shows as such.
        table = Table(title=f"{stmt.line}: changes effective in the cycle")
        for column in ("effective at", "kind", "ref", "by", "recorded at"):
            table.add_column(column)
        for c in stmt.changes:
            recorded = c["recorded_at"]
            table.add_row(local_time(c["at"], timezone), c["kind"], c["ref"],
                          c["actor"] or "(not kept)",
                          local_time(recorded, timezone) if recorded else "(not kept)")
        tables.append(table)
    return tables
