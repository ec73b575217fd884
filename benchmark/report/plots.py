"""Figures for the report (matplotlib, Agg canvas, no pyplot state). Each function returns the
Figure; save_figure writes it as PNG and PDF."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from benchmark.core.evaluation.suite import attack_title
from benchmark.report.collect import Collection
from benchmark.report.expected import order_methods
from benchmark.report.figure_style import (
    error_bars,
    legend_columns,
    method_colors,
    new_figure,
    shown,
    styled,
)
from benchmark.report.intervals import curve_intervals
from benchmark.report.labels import place_labels
from benchmark.report.plot_classes import per_class_figure
from benchmark.report.views import VIEW_TITLES, same_colour


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated when both coordinates are maximised, by x ascending."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def _interval_errors(rows: pd.DataFrame, key: str, values: np.ndarray) -> np.ndarray:
    """Error bars (2 x n, %) from `<key>_lo` / `_hi`; zeros without them."""
    if f"{key}_lo" not in rows:
        return np.zeros((2, len(values)))
    return np.nan_to_num(error_bars(values, rows[f"{key}_lo"].to_numpy(float) * 100,
                                     rows[f"{key}_hi"].to_numpy(float) * 100))


@styled
def tradeoff_figure(summary: pd.DataFrame, title: str, checkpoint: str = "best",
                    attack: str = "autoattack", view: str = "",
                    labels: Sequence[str] | None = None) -> Figure:
    """Average vs worst-class accuracy per method, coloured by training cost (seconds with warm
    start), labelled, with 95 % bootstrap interval error bars (when the summary has them) and
    the Pareto front (of the ranked rows); only `labels` (one view's rows) when given."""
    rows = summary[(summary["checkpoint"] == checkpoint) & (summary["seeds"] > 0)]
    if labels is not None:
        rows = rows[rows["method"].isin(labels)]
    rows = rows[np.isfinite(rows[f"{attack}_avg"]) & np.isfinite(rows[f"{attack}_worst"])]
    fig = new_figure(5.5, 4.2)
    ax = fig.add_subplot()
    xs = rows[f"{attack}_avg"].to_numpy(float) * 100
    ys = rows[f"{attack}_worst"].to_numpy(float) * 100
    cost = rows["train_seconds_with_warm_start"].to_numpy(float)
    xerr, yerr = (_interval_errors(rows, f"{attack}_{stat}", values)
                  for stat, values in (("avg", xs), ("worst", ys)))
    if xerr.any() or yerr.any():
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="none", ecolor="gray", elinewidth=0.8,
                    capsize=2, zorder=1)
    sc = ax.scatter(xs, ys, c=cost, cmap="viridis", s=60, edgecolors="black", linewidths=0.6,
                    zorder=3, clip_on=False)  # points on an axis (0 %) stay whole
    fig.colorbar(sc, ax=ax, label="Train time incl. warm start (s)")
    ax.margins(0.15)
    ax.autoscale_view()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()  # accuracy axes stay within [0, 100]
    ax.set_xlim(max(x0, 0.0), min(x1, 100.0))
    ax.set_ylim(max(y0, 0.0), min(y1, 100.0))
    name = attack_title(attack)
    ax.set_xlabel(f"Average {name} accuracy (%)")
    ax.set_ylabel(f"Worst-class {name} accuracy (%)")
    ax.set_title(f"{title}: average vs worst class ({checkpoint} checkpoint)"
                 + (f"\n{VIEW_TITLES[view]}" if view else ""))
    competing = np.flatnonzero(rows["ranked"].to_numpy(bool) if "ranked" in rows
                               else np.ones(len(rows), bool))  # a teacher is never on it
    front = [int(competing[i]) for i in pareto_front(list(zip(
        xs[competing].tolist(), ys[competing].tolist(), strict=True)))]
    obstacles = []
    if front:
        ax.plot(xs[front], ys[front], linestyle="--", color="tab:red", linewidth=1.0,
                zorder=2, label="Pareto front")
        legend = ax.legend(loc="best", frameon=False)
        fig.canvas.draw()  # "best" is decided here; frozen so the labels cannot move it
        box = legend.get_window_extent(fig.canvas.get_renderer())
        legend.set_loc(tuple(ax.transAxes.inverted().transform(box.p0)))
        obstacles.append(box)
    place_labels(ax, xs.tolist(), ys.tolist(), [shown(m) for m in rows["method"]],
                 obstacles=obstacles)
    return fig


def _pad_single_epoch(ax: Any, epochs: pd.Series) -> None:
    """A readable x axis when every point sits at one epoch."""
    if epochs.nunique() == 1:
        e = int(epochs.iloc[0])
        ax.set_xlim(e - 1, e + 1)


HEIGHT = 3.6  # inches, of the validation curves


@styled
def curves_figure(history: pd.DataFrame, title: str, colors: dict[str, Any] | None = None,
                  bands: pd.DataFrame | None = None) -> Figure:
    """Validation robust accuracy per epoch (average and worst class), one line per method
    (mean over seeds; band: the 95 % bootstrap interval of `bands`, from
    intervals.curve_intervals); warm-started runs start at their begin epoch."""
    fig = new_figure(10.0, HEIGHT)
    axes = fig.subplots(1, 2)
    methods = order_methods(history["method"])
    colors = colors or method_colors(methods)
    for ax, stat, name in zip(axes, ("avg", "worst"), ("average", "worst class"), strict=True):
        for method in methods:
            mine = history[history["method"] == method]
            mean = mine.groupby("epoch")[f"val_robust_{stat}"].mean().sort_index() * 100
            epochs = mean.index.to_numpy()
            ax.plot(epochs, mean.to_numpy(), color=colors[method], label=shown(method),
                    marker="." if len(epochs) <= 30 else None)
            if bands is not None:
                band = bands[(bands["method"] == method) & (bands["stat"] == stat)]
                band = band.set_index("epoch").reindex(epochs)  # absent epochs: NaN
                ax.fill_between(epochs, np.clip(band["lo"].to_numpy(float) * 100, 0, 100),
                                np.clip(band["hi"].to_numpy(float) * 100, 0, 100),
                                color=colors[method], alpha=0.2, linewidth=0)
            if int(mine["begin_epoch"].max()) > 0 and len(mean):
                ax.plot([epochs[0]], [mean.iloc[0]], marker="o", color=colors[method])
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Validation robust accuracy (%)")
        ax.set_title(f"Validation robust accuracy: {name}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, min(ax.get_ylim()[1], 100.0))
        _pad_single_epoch(ax, history["epoch"])
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                   ncol=legend_columns(len(methods), HEIGHT))
    notes = ["mean over seeds" + ("; bands: 95% bootstrap interval (seeds and validation "
                                  "points)" if bands is not None else "")]
    if bool((history["begin_epoch"] > 0).any()):
        notes.append("warm-started runs start at their begin epoch, marked o")
    fig.suptitle(f"{title}: validation curves per epoch\n{'; '.join(notes)}", fontsize=9)
    return fig


def _is_count(values: pd.Series) -> bool:
    """Raw counters (whole numbers above 1, e.g. examples seen) are not plotted: their
    fractions are (HAM logs both)."""
    v = values.to_numpy(float)
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.nanmax(np.abs(v)) > 1)


def _state_panels(state: pd.DataFrame, methods: Sequence[str]
                  ) -> list[tuple[str, str, pd.DataFrame]]:
    """(method, key, epoch x element table averaged over seeds) for every plotted key."""
    panels = []
    for method in methods:
        sub = state[state["method"] == method]
        for key in sorted(sub["key"].unique()):
            rows = sub[sub["key"] == key]
            if _is_count(rows["value"]) or rows["value"].nunique() <= 1:
                continue  # raw counters and constants (e.g. CFA's FAWA never passing) say nothing
            table = rows.groupby(["epoch", "index"])["value"].mean().unstack("index")
            panels.append((method, key, table))
    return panels


STATE_COLUMNS = 4


@styled
def state_figure(state: pd.DataFrame, title: str, classes: Sequence[str] | None = None
                 ) -> Figure | None:
    """Method state per epoch: one small panel per (method, logged key). A per-class key (a
    list, e.g. FRL's multipliers) draws one line per class; a scalar (e.g. HAM's dropped
    fraction) one line. Raw counters are left out. None if no method logs any state."""
    methods = order_methods(state["method"])
    panels = _state_panels(state, methods)
    if not panels:
        return None
    ncols = min(STATE_COLUMNS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(3.2 * ncols, 2.6 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    handles: dict[str, Any] = {}
    for ax, (method, key, table) in zip(axes, panels, strict=False):
        for index in table.columns:
            name = ("value" if index == -1 else
                    classes[index] if classes is not None and index < len(classes)
                    else f"class {index}")
            color = None if index == -1 else plt_cycle(int(index))
            line = ax.plot(table.index, table[index], marker=".", color=color,
                           label=name, linewidth=1.2)[0]
            if index != -1:
                handles.setdefault(name, line)
        ax.set_title(f"{shown(method)}: {key}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Epoch")
        _pad_single_epoch(ax, pd.Series(table.index))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 10), frameon=False, fontsize=7)
    fig.suptitle(f"{title}: method state per epoch (per-class keys: one line per class)")
    return fig


def plt_cycle(i: int) -> Any:
    """The i-th colour of a 20-colour qualitative map (per-class lines)."""
    from matplotlib import colormaps

    return colormaps["tab20"](i % 20)


def save_figure(fig: Figure, out: Path, stem: str) -> dict[str, Path]:
    """Write stem.png (200 dpi) and stem.pdf; keys plot_<stem>_png / plot_<stem>_pdf."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for ext in ("png", "pdf"):
        path = out / f"{stem}.{ext}"
        # no creation date: regenerating the report from the same records gives the same bytes
        fig.savefig(path, dpi=200 if ext == "png" else None,
                    metadata={"CreationDate": None} if ext == "pdf" else None)
        written[f"plot_{stem}_{ext}"] = path
    return written


def per_view(stem: str, views: dict[str, list[str]],
             make: Callable[[str, Sequence[str] | None], Figure | None]
             ) -> dict[str, Figure | None]:
    """`stem`: one figure of every row (`make("", None)`); for a tuned comparison one figure
    per view, so a tuned row is never drawn among the defaults: `stem` the tuned rows,
    `stem_defaults` the defaults' (`make(view, its labels)`)."""
    if not views:
        return {stem: make("", None)}
    return {stem: make("tuned", views["tuned"]),
            f"{stem}_defaults": make("defaults", views["defaults"])}


def _rows(frame: pd.DataFrame, labels: Sequence[str] | None) -> pd.DataFrame:
    return frame if labels is None else frame[frame["method"].isin(labels)]


def _drawn(frame: pd.DataFrame, draw: Callable[[pd.DataFrame], Figure]) -> Figure | None:
    """`draw(frame)`; None (no figure) for a view with no finished run yet."""
    return None if frame.empty else draw(frame)


def _titled(title: str, view: str) -> str:
    return f"{title}, {VIEW_TITLES[view]}" if view else title


def write_plots(coll: Collection, summary: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Every report figure as PNG and PDF."""
    title = f"{coll.dataset}/{coll.preset}"
    # one colour per method in every figure; a tuned row takes its method's colour
    colors = method_colors(coll.methods, same_colour(coll.views))
    bands = curve_intervals(coll.val_per_class)
    figures = {
        **per_view("per_class_robust", coll.views, lambda view, labels: _drawn(
            _rows(coll.per_class, labels), lambda rows: per_class_figure(
                rows, coll.classes, _titled(title, view), colors=colors))),
        **per_view("avg_vs_worst", coll.views, lambda view, labels: tradeoff_figure(
            summary, title, view=view, labels=labels)),
        **per_view("val_curves", coll.views, lambda view, labels: _drawn(
            _rows(coll.history, labels), lambda rows: curves_figure(
                rows, _titled(title, view), colors=colors, bands=_rows(bands, labels)))),
        "method_state": state_figure(coll.state, title, coll.classes),
    }
    written: dict[str, Path] = {}
    for stem, fig in figures.items():
        if fig is not None:
            written.update(save_figure(fig, out, stem))
    return written
