"""The smallest difference the design can detect, from the seed-to-seed spread it measured.

For a statistic (AutoAttack average or worst-class accuracy of the best checkpoint), the
seed-to-seed standard deviation is pooled over every method with at least two seeds (each
method's variance weighted by its degrees of freedom). Two methods with n seeds each are then
told apart by a two-sided t-test on their seed means at level ALPHA with probability POWER when
their true difference is at least

    (t[1 - ALPHA/2, 2n - 2] + t[POWER, 2n - 2]) * s_pooled * sqrt(2 / n)

(the usual central-t approximation; the exact noncentral-t power at that difference is 0.79 for
n = 3, 0.80 from n = 5). n is the most common seed count, the smaller one on a tie. Pooling
assumes the methods share one spread; one unstable method (a default that diverges on some seeds)
can dominate the pooled variance, so the same difference is also stated at the median of the
methods' standard deviations: what a pair of typical methods can resolve. This is the
classical minimum detectable effect of a two-sample comparison: a design statement (what n
seeds can resolve given the spread seen), not a test of any pair. The test points are the same
for every seed, so their sampling (which the bootstrap intervals add) is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

ALPHA = 0.05
POWER = 0.8
ATTACK = "autoattack"
STATISTICS = {"avg": "average accuracy", "worst": "worst-class accuracy"}


@dataclass(frozen=True)
class Detectable:
    """The smallest detectable difference of one statistic, in accuracy points."""

    stat: str
    points: float          # the difference (points of accuracy)
    pooled_sd: float       # the pooled seed-to-seed standard deviation (points)
    median_sd: float       # the median over methods of their seed-to-seed standard deviations
    median_points: float   # the difference at median_sd (points)
    seeds: int             # seeds per method the design assumes (the most common count)
    methods: int           # methods pooled
    mixed: bool            # the pooled methods have different seed counts


def detectable_difference(summary: pd.DataFrame, stat: str, attack: str = ATTACK,
                          checkpoint: str = "best") -> Detectable | None:
    """The design's smallest detectable difference in `attack`'s `stat`; None without two
    methods of at least two seeds."""
    from scipy.stats import t

    std = f"{attack}_{stat}_std"
    if std not in summary:
        return None
    rows = summary[(summary["checkpoint"] == checkpoint) & (summary["seeds"] >= 2)
                   & summary[std].notna()]
    if len(rows) < 2:
        return None
    dof = rows["seeds"] - 1
    pooled_sd = 100 * math.sqrt(float((dof * rows[std] ** 2).sum() / dof.sum()))
    median_sd = 100 * float(rows[std].median())
    n = int(rows["seeds"].mode().min())
    scale = (t.ppf(1 - ALPHA / 2, 2 * n - 2) + t.ppf(POWER, 2 * n - 2)) * math.sqrt(2 / n)
    return Detectable(stat, scale * pooled_sd, pooled_sd, median_sd, scale * median_sd, n,
                      len(rows), rows["seeds"].nunique() > 1)


def _part(d: Detectable, attack_name: str) -> str:
    what = f"{attack_name} {STATISTICS[d.stat]}"
    if d.pooled_sd == 0:
        return (f"none stated for {what} (every seed of every method gave the same value: no "
                f"seed-to-seed spread was measured)")
    median = (f"{d.median_points:.1f} points at the median spread over methods, "
              f"{d.median_sd:.1f}" if d.median_sd > 0 else
              "no number at the median spread over methods: 0, most methods' seeds agree")
    return (f"{d.points:.1f} points in {what} (seed-to-seed standard deviation "
            f"{d.pooled_sd:.1f}, pooled over {d.methods} methods; {median})")


def detectable_text(summary: pd.DataFrame, attack_name: str = "AutoAttack") -> str:
    """One sentence: the smallest difference this comparison can detect (empty when the
    records have too few seeds to say)."""
    found = [d for s in STATISTICS if (d := detectable_difference(summary, s)) is not None]
    if not found:
        return ""
    seeds = f"{found[0].seeds} seeds per method" + (
        " (the most common count; methods with fewer seeds resolve less)"
        if found[0].mixed else "")
    return (f"Smallest detectable difference with {seeds} (two-sided t-test on the per-seed "
            f"accuracies, level {ALPHA:g}, power {POWER:g}, best checkpoint): "
            + "; ".join(_part(d, attack_name) for d in found) + ". That test detects smaller "
            f"true differences with probability below {100 * POWER:.0f} %.")
