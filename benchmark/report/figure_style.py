"""What every report figure shares: the print-friendly style, display names, one colour per
method, a figure on an Agg canvas, error bars from intervals."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.report.expected import order_methods
from benchmark.report.table_model import display_names

STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "lines.linewidth": 1.6,
         "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True}


def styled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Build the figure under the report's print-friendly style."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def shown(method: str) -> str:
    """A method's display name (Method.title; a variant keeps its settings)."""
    return display_names([method])[method]


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def method_colors(methods: Sequence[str], same: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """One stable colour per method (in table order) across every figure; a label in `same`
    takes the colour of the label it maps to (a tuned row its method's)."""
    same = same or {}
    keys = list(dict.fromkeys(same.get(m, m) for m in order_methods(methods)))
    cmap = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
    colour = {k: cmap(i % cmap.N) for i, k in enumerate(keys)}
    return {m: colour[same.get(m, m)] for m in methods}


def legend_columns(entries: int, height_in: float, fontsize: float = 8.0) -> int:
    """Columns a legend beside the axes needs so its `entries` fit the figure's height (an
    entry takes about 1.45 font sizes; the titles take the top 0.8 inch)."""
    rows = max(1, int((height_in - 0.8) * 72 / (1.45 * fontsize)))
    return max(1, math.ceil(entries / rows))


def error_bars(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Asymmetric error bars (2 x n) of an interval [lo, hi] around `values`; NaN stays NaN."""
    return np.clip(np.stack([values - lo, hi - values]), 0, None)

