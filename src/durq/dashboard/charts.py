"""The throughput chart, drawn on the server as SVG: no JavaScript, nothing to download."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

# Stacking order, bottom up; the stylesheet colours each ``bar-<outcome>`` class.
OUTCOMES = ("succeeded", "failed", "unprocessable", "lost", "released", "cancelled")

WIDTH, HEIGHT = 1100, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value``: round numbers on the axis."""
    ceiling = 1
    while True:
        for factor in (1, 2, 5):
            if factor * ceiling >= value:
                return factor * ceiling
        ceiling *= 10


def throughput_svg(steps: Sequence[tuple[datetime, dict[str, int]]]) -> Markup:
    """Stacked bars of finished attempts per step, by outcome, with a hover title each."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(counts.values()) for _, counts in steps]
    top = _nice_ceiling(max(totals, default=0) or 1)
    bar_w = plot_w / max(len(steps), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Finished attempts per minute">',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
        f'<text class="label" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>',
        f'<text class="label" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (when, counts) in enumerate(steps):
        x = LEFT + i * bar_w
        y = float(TOP + plot_h)
        described = ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES if counts.get(o, 0))
        title = f"{when:%H:%M} UTC: {described or 'nothing finished'}"
        parts.append(f"<g><title>{escape(title)}</title>")
        parts.append(
            f'<rect class="hover" x="{x:.1f}" y="{TOP}" width="{bar_w:.1f}" height="{plot_h}"/>'
        )
        for outcome in OUTCOMES:
            n = counts.get(outcome, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect class="bar-{outcome}" x="{x + 0.5:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}"/>'
            )
        parts.append("</g>")
    if steps:
        first, last = steps[0][0], steps[-1][0]
        base = TOP + plot_h + 16
        parts.append(f'<text class="label" x="{LEFT}" y="{base}">{first:%H:%M}</text>')
        parts.append(
            f'<text class="label" x="{WIDTH - RIGHT}" y="{base}" '
            f'text-anchor="end">{last:%H:%M} UTC</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
