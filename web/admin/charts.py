"""Small server-rendered SVG charts: bars, stacked bars and lines.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>``; the
pages put a table with the same numbers next to it.  Every text is escaped.
"""

import math
import secrets
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 34
PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#4a5568")


def _frame(title: str, desc: str, body: list[str]) -> Markup:
    n = secrets.token_hex(4)
    head = (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="ct{n} cd{n}">'
        f'<title id="ct{n}">{escape(title)}</title><desc id="cd{n}">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every part escaped above


def nice_top(top: float) -> float:
    """The axis's top: the data's top rounded up so four gridlines fall on round values
    (1, 2, 2.5 or 5 times a power of ten each), never below the data."""
    if top <= 0:
        return 1.0
    step = top / 4
    power = 10.0 ** math.floor(math.log10(step))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step <= factor * power * (1 + 1e-9):
            return 4 * factor * power
    return 4 * 10.0 * power


def _tick(text: str) -> str:
    """An axis value says no more than it must: ₹80 rather than ₹80.00."""
    return text[:-3] if text.endswith(".00") else text


def _axis(top: float, fmt: Callable[[float], str]) -> list[str]:
    parts = []
    inner = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = HEIGHT - BOTTOM - inner * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a5568">{escape(_tick(fmt(value)))}</text>'
        )
    return parts


def _labels(labels: Sequence[str], slot: float, mark: int | None = -1) -> list[str]:
    """At most seven labels, counted from the marked bar (today's; -1: the last), which
    always has one and is set in bold; ``mark=None`` marks none."""
    every = max(1, -(-len(labels) // 7))
    last = len(labels) - 1
    marked = last if mark == -1 else mark
    anchor = last if marked is None else marked
    bold = ' font-weight="700"'
    return [
        f'<text x="{LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
        f'text-anchor="middle" fill="#4a5568"{bold if i == marked else ""}>'
        f"{escape(label)}</text>"
        for i, label in enumerate(labels)
        if (anchor - i) % every == 0
    ]


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    fmt: Callable[[float], str],
    *,
    top: float | None = None,
    empty: str = "Nothing to show yet.",
    mark: int | None = -1,
) -> Markup:
    """One bar per label, one coloured segment per series (e.g. sales per day per machine).

    With nothing above zero there is no chart to draw (an axis of ₹0.00 to ₹0.01
    says nothing): ``empty`` is said instead.
    """
    totals = [sum(max(0.0, values[i]) for _, values in series) for i in range(len(labels))]
    if top is None and not any(t > 0 for t in totals):
        return Markup('<p class="chart-empty">{}</p>').format(empty)
    top = top or nice_top(max([*totals, 0.0]))
    inner_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    body = _axis(top, fmt)
    for i, label in enumerate(labels):
        y = float(HEIGHT - BOTTOM)
        for k, (name, values) in enumerate(series):
            if values[i] <= 0:
                continue
            h = inner_h * min(values[i], top) / top
            y -= h
            tip = f"{name}, {label}: {fmt(values[i])}"
            body.append(
                f'<rect x="{LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
    body += _labels(labels, slot, mark)
    names = ", ".join(name for name, _ in series)
    return _frame(title, f"Bars per day; segments: {names}.", body)


def bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    fmt: Callable[[float], str],
    *,
    top: float | None = None,
    empty: str = "Nothing to show yet.",
) -> Markup:
    return stacked_bars(title, labels, [(title, values)], fmt, top=top, empty=empty)


def line(
    title: str,
    points: Sequence[tuple[int, float]],
    fmt: Callable[[float], str],
    label: Callable[[int], str],
) -> Markup:
    """A line through (ts, value) points, scaled to their range."""
    if not points:
        return _frame(title, "No data in this period.", [])
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    low, high = min(0.0, min(ys)), max(ys)
    span_y = (high - low) or 1.0
    span_x = (xs[-1] - xs[0]) or 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(ts: int, value: float) -> str:
        x = LEFT + inner_w * (ts - xs[0]) / span_x
        y = HEIGHT - BOTTOM - inner_h * (value - low) / span_y
        return f"{x:.1f},{y:.1f}"

    body = _axis(span_y, lambda v: fmt(v + low))
    body.append(
        '<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="'
        + " ".join(at(ts, v) for ts, v in points)
        + '"/>'
    )
    for i, ts in enumerate((xs[0], xs[len(xs) // 2], xs[-1])):
        anchor = ("start", "middle", "end")[i]
        x = LEFT + inner_w * (ts - xs[0]) / span_x
        body.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
            f'text-anchor="{anchor}" fill="#4a5568">{escape(label(ts))}</text>'
        )
    desc = (
        f"{len(points)} readings from {label(xs[0])} to {label(xs[-1])}; "
        f"lowest {fmt(min(ys))}, highest {fmt(high)}, latest {fmt(ys[-1])}."
    )
    return _frame(title, desc, body)


def palette(i: int) -> str:
    return PALETTE[i % len(PALETTE)]
