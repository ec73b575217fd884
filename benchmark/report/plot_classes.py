"""The per-class figure: grouped bars of accuracy per class for every method, with intervals
and each method's worst class marked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark.core.evaluation.suite import attack_title
from benchmark.report.aggregate import per_class_summary
from benchmark.report.expected import order_methods
from benchmark.report.figure_style import (
    error_bars,
    legend_columns,
    method_colors,
    new_figure,
    shown,
    styled,
)

CLASSES_PER_ROW = 25  # many classes wrap onto several rows of bars (print width)


ClassBars = dict[str, tuple[np.ndarray, np.ndarray, set[int]]]  # method -> mean, err, worst


def class_bars(summ: pd.DataFrame, methods: Sequence[str], n_cls: int) -> ClassBars:
    """Per method: mean accuracy per class (%), its error bars, and its worst classes (every
    tie, as the tables round them to 0.1 %)."""
    data = {}
    for method in methods:
        rows = summ[summ["method"] == method].set_index("class_index").reindex(range(n_cls))
        mean = rows["mean"].to_numpy(float) * 100
        err = error_bars(mean, rows["lo"].to_numpy(float) * 100,
                          rows["hi"].to_numpy(float) * 100)
        rounded = np.round(mean, 1)
        worst = set(np.flatnonzero(rounded == np.nanmin(rounded)).tolist()) \
            if np.isfinite(mean).any() else set()
        data[method] = (mean, err, worst)
    return data


def _draw_row(ax: Any, data: ClassBars, colors: dict[str, Any], lo: int, hi: int) -> list[Any]:
    """One row of grouped bars (classes lo..hi-1) with worst-class markers; returns the bars."""
    x = np.arange(hi - lo)
    width = 0.8 / max(len(data), 1)
    bars = []
    for j, (method, (mean, err, worst)) in enumerate(data.items()):
        has_err = bool(np.isfinite(err).any())
        xs = x - 0.4 + width * (j + 0.5)
        bars.append(ax.bar(xs, mean[lo:hi], width, capsize=2, color=colors[method],
                           label=shown(method),
                           yerr=np.nan_to_num(err[:, lo:hi]) if has_err else None,
                           error_kw={"linewidth": 0.8}))
        for w in sorted(k for k in worst if lo <= k < hi):
            y = mean[w] + (np.nan_to_num(err[1, w]) if has_err else 0.0) + 2.0
            ax.plot([xs[w - lo]], [y], marker="v", color="black", markersize=6,
                    linestyle="none")
    return bars


def _label_row(ax: Any, names: list[str], top: float, attack: str) -> None:
    rotate = max((len(c) for c in names), default=0) > 6 or len(names) > 12
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, min(105.0, top + 10.0) if top > 0 else 10.0)
    ax.set_ylabel(f"{attack_title(attack)} accuracy (%)")


@styled
def per_class_figure(per_class: pd.DataFrame, classes: Sequence[str], title: str,
                     checkpoint: str = "best", attack: str = "autoattack",
                     colors: dict[str, Any] | None = None) -> Figure:
    """Grouped bars: accuracy per class for every method, mean over seeds with 95 % bootstrap
    interval error bars (seeds and test points; clipped to [0, 100]), each method's worst class
    (every tied one) marked with a triangle. More than 30 classes wrap onto rows of 25."""
    summ = per_class_summary(per_class, checkpoint, attack)
    methods = order_methods(summ["method"])
    colors = colors or method_colors(methods)
    n_cls, n_m = len(classes), max(len(methods), 1)
    per_row = n_cls if n_cls <= 30 else CLASSES_PER_ROW
    n_rows = max(1, math.ceil(n_cls / max(per_row, 1)))
    height = 0.6 + 3.2 * n_rows
    fig = new_figure(min(16.0, max(6.5, 0.16 * per_row * (n_m + 1) + 1.5)), height)
    axes = np.atleast_1d(fig.subplots(n_rows, 1, squeeze=False)).ravel()
    data = class_bars(summ, methods, n_cls)
    top = max((float(np.nanmax(m + np.nan_to_num(e[1]), initial=0.0))
               for m, e, _ in data.values()), default=0.0)
    bars: list[Any] = []
    for r, ax in enumerate(axes):
        lo, hi = r * per_row, min(n_cls, (r + 1) * per_row)
        row_bars = _draw_row(ax, data, colors, lo, hi)
        bars = bars or row_bars
        _label_row(ax, list(classes[lo:hi]), top, attack)
    axes[-1].set_xlabel("Class")
    seeds = int(summ["n"].max()) if len(summ) else 0
    note = (f"mean over {seeds} seeds" if seeds > 1 else "one seed") + \
        "; bars: 95% bootstrap interval (seeds and test points)"
    axes[0].set_title(f"{title}: per-class {attack_title(attack)} accuracy\n"
                      f"{checkpoint} checkpoint; {note}")
    marker = Line2D([], [], marker="v", color="black", linestyle="none", markersize=6)
    axes[0].legend([*bars, marker], [*map(shown, methods), "worst class"], loc="upper left",
                   bbox_to_anchor=(1.0, 1.0), frameon=False,
                   ncol=legend_columns(len(methods) + 1, height))
    return fig
