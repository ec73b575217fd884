"""Scatter labels never overlap each other, the markers or the legend, and stay in the axes,
even for a crowded plot like the reference leaderboard's (coincident points, a row at 0 %)."""

from __future__ import annotations

import itertools

import pandas as pd
from matplotlib.text import Text

from benchmark.report.plots import tradeoff_figure

# (average, worst) AutoAttack accuracy in %: the reference leaderboard's crowded corner
POINTS = {"pgd_at": (52.0, 0.0), "trades": (48.7, 0.0), "bat": (48.7, 0.0),
          "pgd_at_cfa": (51.1, 0.0), "trades_cfa": (27.2, 0.0), "trades_wat": (34.1, 0.0),
          "trades_dafa": (46.1, 0.0), "faal": (47.9, 4.0), "frl_rw": (47.7, 2.0),
          "frl_rm": (47.5, 2.0), "frl_rwrm": (48.1, 2.0), "ham": (42.5, 10.0)}


def _summary() -> pd.DataFrame:
    return pd.DataFrame([{"checkpoint": "best", "method": m, "seeds": 3,
                          "autoattack_avg": a / 100, "autoattack_worst": w / 100,
                          "train_seconds_with_warm_start": 100.0 + i}
                         for i, (m, (a, w)) in enumerate(POINTS.items())])


def test_labels_do_not_overlap_and_stay_inside() -> None:
    fig = tradeoff_figure(_summary(), "crowded")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    frame = ax.get_window_extent(renderer)
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == len(POINTS)                       # none dropped
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    legend = ax.get_legend().get_window_extent(renderer)
    markers = ax.collections[0].get_offsets()
    centres = ax.transData.transform(markers)
    r = 4.5 * fig.dpi / 72
    for box, label in zip(boxes, labels, strict=True):
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5, label.get_text()
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5, label.get_text()
        assert not box.overlaps(legend), label.get_text()
        for x, y in centres:
            assert not (box.x0 < x + r and x - r < box.x1 and box.y0 < y + r and y - r < box.y1)
