"""`carryover advise LINE`: the advice of docs/advice.md, as tables or `--json`.

Thin: parse, call services.advice.advise, render. Instants are shown in the account's
local time (human_time.local_time); `--json` keeps ISO 8601 in UTC.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from carryover.cli import app
from carryover.cli.common import AtOption, JsonOption, console, instant, print_json, run, uow
from carryover.cli.operator import LineArg, line_timezone
from carryover.domain.advice import DEFAULT_CYCLES, MAX_CYCLES
from carryover.domain.units import format_amount
from carryover.human_time import local_time
from carryover.services.advice import advise as advice_service

CyclesOption = Annotated[int, typer.Option(
    "--cycles", min=1, max=MAX_CYCLES,
    help=f"Complete cycles of history to learn from and to replay plans over (1..{MAX_CYCLES}).")]


def _amount(value: int | None) -> str:
    return "-" if value is None else format_amount(value)


@app.command()
def advise(line: LineArg, at: AtOption = None, cycles: CyclesOption = DEFAULT_CYCLES,
           as_json: JsonOption = False) -> None:
    """Advice computed from the line's own history: forecast, rollover at risk, plan fit
    (the last N complete cycles replayed on each plan), family gifts (docs/advice.md)."""
    view = run(advice_service.advise, uow(), line, instant(at), cycles)
    if as_json:
        print_json(view)
        return
    tz = line_timezone(line)
    console.print(f"[bold]{view['line']}[/bold] at {local_time(view['at'], tz)} ({tz}), "
                  f"{view['cycles']} complete cycle(s) of history")
    f = view["forecast"]
    if f["kind"] == "no_forecast":
        console.print(f["text"])
    else:
        runs_out = ("" if f["runs_out_at"] is None else
                    f"; runs out at {local_time(f['runs_out_at'], tz)}")
        console.print(f"{f['text']} Method: {f['method']}{runs_out}.")
    deposits = view["rollover"]["deposits"]
    if deposits:
        table = Table(title="Rollover deposits")
        for col in ("bucket", "remaining", "expires", "projected unused"):
            table.add_column(col)
        for d in deposits:
            table.add_row(d["bucket"], _amount(d["remaining"]), local_time(d["expires_at"], tz),
                          _amount(d["projected_unused_at_expiry"]))
        console.print(table)
    console.print(view["rollover"]["lost_to_caps_next"]["text"])
    if view["plans"]:
        table = Table(title=f"Plans replayed over the last {view['cycles']} cycle(s), best first")
        for col in ("plan", "price", "overage", "throttled", "blocked", "rollover kept",
                    "switch"):
            table.add_column(col)
        for p in view["plans"]:
            price = "-" if p["price_total"] is None else f"{p['price_total']} {p['currency']}"
            switch = ("current" if p["current"] else
                      p["switch"] + (f" (now forfeits {format_amount(p['forfeits_now'])})"
                                     if p["forfeits_now"] else ""))
            table.add_row(p["plan"], price, format_amount(p["overage"]),
                          f"{p['seconds_throttled']} s", f"{p['seconds_blocked']} s",
                          format_amount(p["rollover_kept"]), switch)
        console.print(table)
    family = view["family"]
    if family is not None:
        for m in family["members"]:
            console.print(m["text"])
        for s in family["suggestions"]:
            console.print(f"Suggestion: {s['text']}")
