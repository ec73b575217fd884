"""Point labels that never overlap: each label takes the nearest free spot around its point.

Greedy, in display pixels: for every point (the most crowded first) candidate spots on rings of
growing radius around it are tried, nearest first; a spot is free when the label's box stays
inside the axes, overlaps no label already placed, no marker and no obstacle (the legend), and
is nearer its own point than any other. Labels away from their point get a thin leader line.
When no spot is free the least-overlapping one is used, so a label is never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

RADII_PT = (4, 10, 17, 25, 34, 45, 58, 72, 90, 110)  # rings of candidate spots (pt)
ANGLES = 16                                  # spots per ring
LEADER_FROM_PT = 12                          # labels further away get a leader line
PAD_PX = 2.0                                 # free space around a label (rendering snaps)
OVERLAP_COST = 1000.0                        # per px^2 of overlap; an ambiguous spot costs 1


def _alignment(angle: float) -> tuple[str, str]:
    c, s = math.cos(angle), math.sin(angle)
    ha = "left" if c > 0.3 else "right" if c < -0.3 else "center"
    va = "bottom" if s > 0.3 else "top" if s < -0.3 else "center"
    return ha, va


def _box(anchor: np.ndarray, size: tuple[float, float], ha: str, va: str) -> Bbox:
    w, h = size
    x0 = anchor[0] - {"left": 0.0, "right": w, "center": w / 2}[ha]
    y0 = anchor[1] - {"bottom": 0.0, "top": h, "center": h / 2}[va]
    return Bbox.from_bounds(x0, y0, w, h)


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _distance(box: Bbox, point: np.ndarray) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def _outside(box: Bbox, frame: Bbox) -> float:
    inside = _overlap(box, frame)
    return box.width * box.height - inside


def place_labels(ax: Axes, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 marker_radius_pt: float = 4.5, obstacles: Sequence[Bbox] = (),
                 fontsize: float = 8) -> list[Annotation]:
    """Annotate (xs[i], ys[i]) with texts[i] without overlaps; the axes limits must be final."""
    fig = ax.figure
    fig.canvas.draw()  # settles the layout: the data -> pixel mapping is final from here
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    frame = ax.get_window_extent(renderer)
    points = ax.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.zeros((0, 2))
    r = marker_radius_pt * px_per_pt
    taken = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in points] + list(obstacles)
    labels: list[Annotation | None] = [None] * len(texts)
    # the most crowded points choose first
    crowd = [sum(np.hypot(*(p - q)) < 40 * px_per_pt for q in points) for p in points]
    for i in sorted(range(len(texts)), key=lambda k: (-crowd[k], k)):
        probe = ax.text(0, 0, texts[i], fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        size = (bb.width, bb.height)
        probe.remove()
        best: tuple[float, float, float, str, str] | None = None
        best_cost = math.inf
        for radius in RADII_PT:
            for k in range(ANGLES):
                angle = math.pi / 4 + 2 * math.pi * k / ANGLES   # upper right first
                ha, va = _alignment(angle)
                offset = np.array([math.cos(angle), math.sin(angle)]) * radius * px_per_pt
                box = _box(points[i] + offset, size, ha, va).padded(PAD_PX)
                cost = OVERLAP_COST * (sum(_overlap(box, t) for t in taken)
                                       + _outside(box, frame))
                mine = _distance(box, points[i])
                if any(_distance(box, q) < mine for j, q in enumerate(points) if j != i):
                    cost += 1.0  # nearer another point than its own: allowed, not preferred
                if cost < best_cost:
                    best, best_cost = (radius, offset[0], offset[1], ha, va), cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        assert best is not None
        radius, dx, dy, ha, va = best
        taken.append(_box(points[i] + np.array([dx, dy]), size, ha, va).padded(PAD_PX))
        arrow = {"arrowstyle": "-", "color": "0.5", "linewidth": 0.6, "shrinkA": 0,
                 "shrinkB": marker_radius_pt} if radius >= LEADER_FROM_PT else None
        note = ax.annotate(texts[i], (xs[i], ys[i]), xytext=(dx / px_per_pt, dy / px_per_pt),
                           textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                           arrowprops=arrow, annotation_clip=False)
        note.set_in_layout(False)  # the labels stay inside the axes; the layout is settled
        labels[i] = note
    return [label for label in labels if label is not None]
