"""Point labels on the trade-off plots that never overlap: each goes to the nearest free
spot around its point, or is left out (its point keeps its hover text)."""

from __future__ import annotations

import math
from typing import Any


def right_half(x: float, xs: list[float], log: bool) -> bool:
    lo, hi = min(xs), max(xs)
    if log:
        x, lo, hi = math.log(x), math.log(lo), math.log(hi)
    return hi > lo and (x - lo) / (hi - lo) > 0.6


# Where a label may go relative to its point (offset in points), nearest first.
CANDIDATES = [(7, 0), (-7, 0), (0, 9), (0, -9)] + [
    (round(r * math.cos(a), 1), round(r * math.sin(a), 1))
    for r in (12, 20, 30, 42) for a in (0, math.pi, math.pi / 4, -math.pi / 4, 3 * math.pi / 4, -3 * math.pi / 4,
                                        math.pi / 2, -math.pi / 2)]


def declutter(fig: Any, ax: Any) -> None:
    """Place each label where it overlaps no other label and no point and stays in the
    panel (nearest free spot first; a thin leader line when it moved away); a label with
    no such spot is left out (its point keeps its hover text)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    def extent(text: Any) -> Any:  # the label alone, without its (hidden) leader line
        text.update_positions(renderer)
        return Text.get_window_extent(text, renderer)

    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    centres = [ax.transData.transform(xy) for c in ax.collections for xy in c.get_offsets()]
    dots = [Bbox.from_bounds(x - 4, y - 4, 8, 8) for x, y in centres]
    placed: list[Any] = []

    def cost(box: Any) -> float:
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        hits = sum(box.overlaps(other) for other in placed) * 10 + sum(box.overlaps(d) for d in dots)
        return hits + (0 if inside else 5)

    for text in sorted(ax.texts, key=lambda t: t.get_zorder(), reverse=True):
        best = None
        for dx, dy in CANDIDATES:
            text.xyann = (dx, dy)
            text.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
            box = extent(text)
            score = cost(box) + math.hypot(dx, dy) / 100
            if best is None or score < best[0]:
                best = (score, dx, dy, box)
            if score < 1:
                break
        score, dx, dy, box = best
        if score >= 5:  # it would overlap another label or leave the panel
            text.set_visible(False)
            continue
        text.xyann = (dx, dy)
        text.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
        if math.hypot(dx, dy) > 10 and text.arrow_patch is not None:
            text.arrow_patch.set_visible(True)
        placed.append(box)
