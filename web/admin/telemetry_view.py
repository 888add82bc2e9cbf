"""Telemetry series as operators read them: human names, units, one chart each."""

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from web.admin import charts


@dataclass(frozen=True)
class Quantity:
    name: str
    fmt: Callable[[float], str]


def _uptime(seconds: float) -> str:
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


KNOWN = {
    "rssi": Quantity("Signal strength", lambda v: f"{v:.0f} dBm"),
    "free_mem": Quantity("Free memory", lambda v: f"{v / 1024:.0f} KiB"),
    "uptime_s": Quantity("Uptime", _uptime),
    "temp_c": Quantity("Temperature", lambda v: f"{v:.1f} °C"),
}


def quantity(key: str) -> Quantity:
    """A known telemetry number, or one a machine made up, named after its key."""
    found = KNOWN.get(key)
    if found is not None:
        return found
    return Quantity(key.replace("_", " ").capitalize(), lambda v: f"{v:g}")


def telemetry_charts(
    series: dict[str, list[tuple[int, float]]], label: Callable[[int], str]
) -> list[tuple[str, Markup, str]]:
    """(name, chart, latest value with its unit) per series, known quantities first."""
    order = sorted(
        series, key=lambda k: (k not in KNOWN, list(KNOWN).index(k) if k in KNOWN else 0, k)
    )
    out = []
    for key in order:
        q = quantity(key)
        points = series[key]
        chart = charts.line(f"{q.name}, last 24 hours", points, q.fmt, label)
        out.append((q.name, chart, q.fmt(points[-1][1])))
    return out
