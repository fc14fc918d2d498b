"""The usage chart: an inline SVG of a cycle's cumulative use and its forecast.

A bar per local day (that day's use), a line of the running total, and the
forecast's band from the total so far to the cycle's end (low to high) with its
central estimate. Server-drawn, so it needs no script and no asset; the figures
are also in a table beside it for screen readers.
"""

from __future__ import annotations

from datetime import date

from carryover.domain.units import Unit, format_amount

WIDTH, HEIGHT, PAD = 640, 240, 36


def usage_chart(days: list[tuple[date, int]], cycle_days: int, forecast: dict,
                zone: str) -> dict:
    """What usage.html draws: a bar a day so far (`days`) on an axis of the cycle's
    `cycle_days`, the running line, and the forecast band from today to the end."""
    running, total = [], 0
    for _, used in days:
        total += used
        running.append(total)
    today = len(days)
    projected = max(forecast.get("projected_use") or 0, total)
    high = max(forecast.get("high") or 0, projected)
    top = max([high, *running, 1])
    n = max(cycle_days, len(days), 1)
    step = (WIDTH - 2 * PAD) / n

    def y(value: int) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top, 1)

    bars = [{"x": round(PAD + i * step + 1, 1), "width": round(max(step - 2, 1), 1),
             "y": y(used), "height": round(HEIGHT - PAD - y(used), 1),
             "label": f"{day:%b %d}: {format_amount(used, Unit.DATA)}"}
            for i, (day, used) in enumerate(days)]
    line = " ".join(f"{round(PAD + (i + 0.5) * step, 1)},{y(v)}" for i, v in enumerate(running))
    last_x = round(PAD + (today - 0.5) * step, 1) if today else PAD
    end_x = WIDTH - PAD
    low = max(forecast.get("low") or 0, total)
    band = (f"{last_x},{y(total)} {end_x},{y(high)} {end_x},{y(low)}")
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "line": line, "band": band,
            "estimate": f"{last_x},{y(total)} {end_x},{y(projected)}",
            "top": format_amount(top, Unit.DATA), "axis_y": HEIGHT - PAD, "pad": PAD,
            "total": total, "zone": zone}
