"""Across-seed statistics: mean +- std per method, worst class as the mean of per-seed minima,
and DAFA's relative change rho against the pgd_at baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from benchmark.report.collect import ATTACKS, CHECKPOINTS, COST_KEYS
from benchmark.report.expected import BASELINE, order_methods
from benchmark.report.intervals import interval, replicates, seed_counts

DDOF = 1            # sample std across seeds; undefined (NaN) for a single seed
STATS = ("avg", "overall", "worst", "std", "worst10")
RHO_ATTACK = "autoattack"


def seed_stats(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, std with ddof=DDOF, n) of the finite values; std is NaN for fewer than 2."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    if n <= DDOF:
        return mean, math.nan, n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - DDOF)), n


def rho(avg: float, worst: float, avg_base: float, worst_base: float) -> float:
    """DAFA's rho = (worst - worst_base) / worst_base + (avg - avg_base) / avg_base (NaN when
    the baseline is zero or missing)."""
    if any(math.isnan(v) for v in (avg, worst, avg_base, worst_base)) or \
            worst_base == 0 or avg_base == 0:
        return math.nan
    return (worst - worst_base) / worst_base + (avg - avg_base) / avg_base


def summary_frame(metrics: pd.DataFrame, methods: Sequence[str] | None = None,
                  baseline: str = BASELINE) -> pd.DataFrame:
    """One row per checkpoint x method: `<attack>_<stat>` (mean over seeds) and
    `<attack>_<stat>_std`, cost means and stds, `seeds` (finished), and `rho` vs the baseline.

    The worst-class column is the mean over seeds of each seed's own minimum over classes (not
    the minimum of the mean per-class accuracies). Methods without a finished seed get a row of
    NaN so they are never silently dropped.
    """
    methods = order_methods(methods if methods is not None else metrics["method"])
    rows = []
    for ckpt in CHECKPOINTS:
        for method in methods:
            sub = metrics[(metrics["method"] == method) & (metrics["checkpoint"] == ckpt)]
            row: dict[str, object] = {"checkpoint": ckpt, "method": method,
                                      "seeds": int(sub["seed"].nunique())}
            for attack in ATTACKS:
                at = sub[sub["attack"] == attack]
                for stat in STATS:
                    mean, std, _ = seed_stats(at[stat].tolist())
                    row[f"{attack}_{stat}"], row[f"{attack}_{stat}_std"] = mean, std
            per_run = sub.drop_duplicates("run")
            for col in COST_KEYS:
                row[col], row[f"{col}_std"], _ = seed_stats(per_run[col].tolist())
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rho"] = math.nan
    for ckpt in CHECKPOINTS:
        base = frame[(frame["checkpoint"] == ckpt) & (frame["method"] == baseline)]
        if base.empty or base["seeds"].iloc[0] == 0:
            continue
        a0, w0 = base[f"{RHO_ATTACK}_avg"].iloc[0], base[f"{RHO_ATTACK}_worst"].iloc[0]
        mask = frame["checkpoint"] == ckpt
        frame.loc[mask, "rho"] = [rho(a, w, a0, w0) for a, w in zip(
            frame.loc[mask, f"{RHO_ATTACK}_avg"], frame.loc[mask, f"{RHO_ATTACK}_worst"],
            strict=True)]
    return frame


def per_class_summary(per_class: pd.DataFrame, checkpoint: str = "best",
                      attack: str = "autoattack") -> pd.DataFrame:
    """Mean, std (ddof=DDOF) and n over seeds of each method's accuracy on each class, and its
    95 % bootstrap interval over seeds and test points (lo, hi; intervals.py)."""
    sub = per_class[(per_class["checkpoint"] == checkpoint) & (per_class["attack"] == attack)]
    rows = []
    for (method, idx, name), group in sub.groupby(["method", "class_index", "class"], sort=False):
        mean, std, n = seed_stats(group["accuracy"].tolist())
        lo = hi = math.nan
        counts = seed_counts(group[group["n"] > 0])  # one class: a count per seed
        if counts:
            lo, hi = interval(replicates(counts, "avg"))
        rows.append({"method": method, "class_index": idx, "class": name, "mean": mean,
                     "std": std, "n": n, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["method", "class_index", "class", "mean", "std", "n",
                                       "lo", "hi"])
