"""95 % intervals that say what is noise: a bootstrap over seeds and over test points.

For one method, checkpoint and attack, each replicate draws the seeds with replacement and,
within each drawn seed, the test points of every class with replacement (the class's correct
count then follows Binomial(n_k, acc_k): resampling a class's points only needs its count),
computes the statistic per seed (class mean or worst class) and averages over the drawn seeds.
The 2.5 % and 97.5 % quantiles of the replicates are the interval. With one seed only the test
points vary. The validation curves get the same interval per epoch, over the validation points
(`curve_intervals`). A best value counts as separated from the runner-up when the 95 % interval
of the difference of their replicates (drawn independently) excludes 0.

Paired test against the baseline: where records hold per-point outcomes (evaluations since
they were recorded), an exact McNemar test on the same test points, pooled over the seeds both
methods have: b = points the baseline gets right and the method wrong, c = the reverse; the
two-sided binomial p-value of min(b, c) in b + c trials at 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.core.metrics import unpack_outcomes
from benchmark.runs.schema import RunRecord

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


def seed_counts(per_class: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per seed, (correct count per class, points per class) from per-class accuracies and
    `n`: what `replicates` draws from."""
    out = []
    for _, run in per_class.groupby("seed"):
        run = run.sort_values("class_index")
        n = run["n"].fillna(0).to_numpy(float)
        out.append((np.rint(run["accuracy"].to_numpy(float) * n), n))
    return out


def _replicates(per_class: pd.DataFrame, method: str, checkpoint: str, attack: str,
                stat: str) -> np.ndarray | None:
    pc = per_class[(per_class["method"] == method) & (per_class["checkpoint"] == checkpoint)
                   & (per_class["attack"] == attack)]
    return None if pc.empty else replicates(seed_counts(pc), stat)


def _mark_best(out: pd.DataFrame, key: str, reps: dict[int, np.ndarray]) -> None:
    """Set `<key>_separated` on the best ranked row among `reps` (row index -> replicates)
    when it is separated from the runner-up; rows whose `ranked` is False never compete."""
    ranked = sorted((i for i in reps if "ranked" not in out or out.loc[i, "ranked"]),
                    key=lambda i: out.loc[i, key], reverse=True)
    if len(ranked) >= 2 and separated(reps[ranked[0]], reps[ranked[1]]):
        out.loc[ranked[0], f"{key}_separated"] = True


def add_intervals(summary: pd.DataFrame, per_class: pd.DataFrame, attacks: Sequence[str]
                  ) -> pd.DataFrame:
    """Add `<attack>_<stat>_lo` / `_hi` (fractions) and `<attack>_<stat>_separated` (True on
    the best row of its checkpoint when separated from the runner-up) for avg and worst; rows
    whose `ranked` column is False (if present) get intervals but never compete."""
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
                    if (rep := _replicates(per_class, method, str(ckpt), attack, stat)) is None:
                        continue
                    reps[i] = rep
                    out.loc[i, [f"{key}_lo", f"{key}_hi"]] = interval(rep)
                _mark_best(out, key, reps)
    return out


def mark_separated(rows: pd.DataFrame, per_class: pd.DataFrame, attacks: Sequence[str]
                   ) -> pd.DataFrame:
    """`<attack>_<stat>_separated` again, competing only among `rows` (one checkpoint's rows
    of one view): the same test as `add_intervals`, on the same replicates."""
    out = rows.copy()
    for attack in attacks:
        for stat in STATISTICS:
            key = f"{attack}_{stat}"
            out[f"{key}_separated"] = False
            reps = {i: rep for i, row in out.iterrows()
                    if (rep := _replicates(per_class, row["method"], row["checkpoint"], attack,
                                           stat)) is not None}
            _mark_best(out, key, reps)
    return out


def curve_intervals(val_per_class: pd.DataFrame) -> pd.DataFrame:
    """95 % intervals of the validation curves: per method, epoch and statistic (avg, worst),
    the same bootstrap over the seeds that reached the epoch and over validation points.
    Columns: method, epoch, stat, lo, hi (fractions)."""
    rows = []
    for (method, epoch), frame in val_per_class.groupby(["method", "epoch"], sort=True):
        counts = seed_counts(frame)
        for stat in STATISTICS:
            lo, hi = interval(replicates(counts, stat))
            rows.append({"method": method, "epoch": int(epoch), "stat": stat, "lo": lo,
                         "hi": hi})
    return pd.DataFrame(rows, columns=["method", "epoch", "stat", "lo", "hi"])


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of the discordant counts b and c."""
    from scipy.stats import binomtest

    return 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)


def _outcomes(rec: RunRecord, checkpoint: str, attack: str) -> list[bool] | None:
    res = rec.result(checkpoint, attack)
    if res is None or res.outcomes is None or res.n_points is None:
        return None
    return unpack_outcomes(res.outcomes, int(res.n_points))


def add_paired_tests(summary: pd.DataFrame, records: Sequence[RunRecord], baseline: str,
                     attack: str = "autoattack") -> pd.DataFrame:
    """`<attack>_vs_baseline_b`, `_c` (discordant points pooled over shared seeds) and `_p`
    (exact McNemar) per method and checkpoint; NaN without per-point outcomes."""
    out = summary.copy()
    key = f"{attack}_vs_baseline"
    for col in ("b", "c", "p"):
        out[f"{key}_{col}"] = np.nan
    by_run = {(r.label, r.seed): r for r in records}
    for i, row in out.iterrows():
        if row["method"] == baseline:
            continue
        b = c = 0
        paired = False
        for (label, seed), rec in by_run.items():
            base = by_run.get((baseline, seed))
            if label != row["method"] or base is None:
                continue
            mine = _outcomes(rec, row["checkpoint"], attack)
            theirs = _outcomes(base, row["checkpoint"], attack)
            if mine is None or theirs is None or len(mine) != len(theirs):
                continue
            paired = True
            b += sum(t and not m for m, t in zip(mine, theirs, strict=True))
            c += sum(m and not t for m, t in zip(mine, theirs, strict=True))
        if paired:
            out.loc[i, [f"{key}_b", f"{key}_c", f"{key}_p"]] = [b, c, mcnemar_p(b, c)]
    return out
