"""Bar charts as server-rendered SVG (no script): labels are escaped like any other text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup

WIDTH = 640
LABEL_WIDTH = 190
ROW = 26
BAR = 18


def bar_chart(
    bars: Sequence[tuple[str, float]],
    title: str,
    shown: Callable[[float], str] = lambda v: f"{v:g}",
) -> Markup:
    """A horizontal bar chart, one bar per (label, value)."""
    if not bars:
        return Markup("")
    top = max((value for _, value in bars), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 70
    height = ROW * len(bars) + 8
    parts = [
        Markup(
            "<svg class='chart' role='img' viewBox='0 0 {w} {h}' width='{w}' height='{h}' "
            "xmlns='http://www.w3.org/2000/svg'><title>{t}</title>"
        ).format(w=WIDTH, h=height, t=title)
    ]
    for index, (label, value) in enumerate(bars):
        y = 4 + index * ROW
        length = max(round(span * value / top), 1 if value else 0)
        parts.append(
            Markup(
                "<g><text x='{lx}' y='{ty}' text-anchor='end' class='label'>{label}</text>"
                "<rect x='{bx}' y='{y}' width='{length}' height='{bar}' class='bar'/>"
                "<text x='{vx}' y='{ty}' class='value'>{value}</text></g>"
            ).format(
                lx=LABEL_WIDTH - 8,
                ty=y + BAR - 4,
                label=label,
                bx=LABEL_WIDTH,
                y=y,
                length=length,
                bar=BAR,
                vx=LABEL_WIDTH + length + 6,
                value=shown(value),
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
