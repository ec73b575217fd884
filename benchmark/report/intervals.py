"""95 % intervals that say what is noise: a bootstrap over seeds and over test points.

For one method, checkpoint and attack, each replicate draws the seeds with replacement and,
within each drawn seed, the test points of every class with replacement (the class's correct
count then follows Binomial(n_k, acc_k): resampling a class's points only needs its count),
computes the statistic per seed (class mean or worst class) and averages over the drawn seeds.
The 2.5 % and 97.5 % quantiles of the replicates are the interval. With one seed only the test
points vary. A best value counts as separated from the runner-up when the 95 % interval of the
difference of their replicates (drawn independently) excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

REPS = 2000
LEVEL = 0.95
STATISTICS = ("avg", "worst")


def replicates(seeds: Sequence[tuple[np.ndarray, np.ndarray]], stat: str, reps: int = REPS,
               seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the seed mean of `stat` ("avg" or "worst" over classes); each
    element of `seeds` is (correct count per class, points per class)."""
    rng = np.random.default_rng(seed)
    hits = np.array([h for h, _ in seeds], dtype=float)   # seeds x classes
    n = np.array([k for _, k in seeds], dtype=float)
    valid = n > 0
    p = np.divide(hits, n, out=np.zeros_like(hits), where=valid)
    pick = rng.integers(0, len(seeds), size=(reps, len(seeds)))          # seeds drawn
    draws = rng.binomial(n[pick].astype(int), p[pick]) / np.where(valid[pick], n[pick], 1)
    draws = np.where(valid[pick], draws, np.nan)
    per_seed = np.nanmean(draws, axis=2) if stat == "avg" else np.nanmin(draws, axis=2)
    return per_seed.mean(axis=1)


def interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def separated(best: np.ndarray, runner_up: np.ndarray, higher_better: bool = True) -> bool:
    """The 95 % interval of best - runner-up (independent replicates) excludes 0."""
    diff = best - runner_up if higher_better else runner_up - best
    return interval(diff)[0] > 0


def _counts(per_class: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _, run in per_class.groupby("seed"):
        run = run.sort_values("class_index")
        n = run["n"].fillna(0).to_numpy(float)
        out.append((np.rint(run["accuracy"].to_numpy(float) * n), n))
    return out


def add_intervals(summary: pd.DataFrame, per_class: pd.DataFrame, attacks: Sequence[str]
                  ) -> pd.DataFrame:
    """Add `<attack>_<stat>_lo` / `_hi` (fractions) and `<attack>_<stat>_separated` (True on
    the best row of its checkpoint when separated from the runner-up) for avg and worst."""
    out = summary.copy()
    for attack in attacks:
        for stat in STATISTICS:
            key = f"{attack}_{stat}"
            out[f"{key}_lo"] = np.nan
            out[f"{key}_hi"] = np.nan
            out[f"{key}_separated"] = False
            for ckpt, rows in out.groupby("checkpoint"):
                reps: dict[int, np.ndarray] = {}
                for i, method in rows["method"].items():
                    pc = per_class[(per_class["method"] == method)
                                   & (per_class["checkpoint"] == ckpt)
                                   & (per_class["attack"] == attack)]
                    if pc.empty:
                        continue
                    reps[i] = replicates(_counts(pc), stat)
                    out.loc[i, [f"{key}_lo", f"{key}_hi"]] = interval(reps[i])
                ranked = sorted(reps, key=lambda i: out.loc[i, key], reverse=True)
                if len(ranked) >= 2 and separated(reps[ranked[0]], reps[ranked[1]]):
                    out.loc[ranked[0], f"{key}_separated"] = True
    return out
