"""The throughput chart: bars drawn on the server as SVG, its labels as HTML around them.

No JavaScript, nothing to download. The SVG stretches to whatever width the page gives it
(``preserveAspectRatio="none"``), so text inside it would shrink with the screen: on a phone
it came out about 4 px tall. The axis labels are therefore HTML, at the stylesheet's size
whatever the width, and the lines keep one pixel (``vector-effect: non-scaling-stroke``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

# Stacking order, bottom up; the stylesheet colours each ``bar-<outcome>`` class.
OUTCOMES = ("succeeded", "failed", "unprocessable", "lost", "released", "cancelled")

# The SVG's own units. The stylesheet sets the size it is drawn at, so these only fix
# proportions: one unit between bars, about a pixel on a desktop.
WIDTH, HEIGHT = 1000, 100


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value``: round numbers on the axis."""
    ceiling = 1
    while True:
        for factor in (1, 2, 5):
            if factor * ceiling >= value:
                return factor * ceiling
        ceiling *= 10


def _bars(steps: Sequence[tuple[datetime, dict[str, int]]], top: int) -> list[str]:
    """One group per step: a hover band with its tooltip, and the bars stacked bottom up."""
    bar_w = WIDTH / max(len(steps), 1)
    parts = []
    for i, (when, counts) in enumerate(steps):
        x = i * bar_w
        y = float(HEIGHT)
        described = ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES if counts.get(o, 0))
        title = f"{when:%H:%M} UTC: {described or 'nothing finished'}"
        parts.append(f"<g><title>{escape(title)}</title>")
        parts.append(
            f'<rect class="hover" x="{x:.2f}" y="0" width="{bar_w:.2f}" height="{HEIGHT}"/>'
        )
        for outcome in OUTCOMES:
            n = counts.get(outcome, 0)
            if not n:
                continue
            h = HEIGHT * n / top
            y -= h
            parts.append(
                f'<rect class="bar-{outcome}" x="{x + 0.5:.2f}" y="{y:.2f}" '
                f'width="{max(bar_w - 1, 0.5):.2f}" height="{h:.2f}"/>'
            )
        parts.append("</g>")
    return parts


def throughput_chart(steps: Sequence[tuple[datetime, dict[str, int]]]) -> Markup:
    """Stacked bars of finished attempts per step, by outcome, with a hover title each; the
    axis top and 0 beside them, the first and last minute below."""
    totals = [sum(counts.values()) for _, counts in steps]
    top = _nice_ceiling(max(totals, default=0) or 1)
    line = 'vector-effect="non-scaling-stroke"'
    svg = [
        f'<svg class="chart-plot" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" xmlns="http://www.w3.org/2000/svg" '
        f'aria-label="Finished attempts per minute">',
        f'<line class="grid" x1="0" y1="0" x2="{WIDTH}" y2="0" {line}/>',
        *_bars(steps, top),
        f'<line class="axis" x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" {line}/>',
        "</svg>",
    ]
    times = ""
    if steps:
        first, last = steps[0][0], steps[-1][0]
        times = (
            f'<span class="label">{first:%H:%M}</span><span class="label">{last:%H:%M} UTC</span>'
        )
    return Markup(
        '<figure class="chart">'
        f'<div class="chart-y"><span class="label">{top}</span><span class="label">0</span></div>'
        f"{''.join(svg)}"
        f'<div class="chart-x">{times}</div>'
        "</figure>"
    )
