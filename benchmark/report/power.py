"""The smallest difference the design can detect, from the seed-to-seed spread it measured.

For a statistic (AutoAttack average or worst-class accuracy of the best checkpoint), the
seed-to-seed standard deviation is pooled over every method with at least two seeds (each
method's variance weighted by its degrees of freedom). Two methods with n seeds each are then
told apart by a two-sided t-test on their seed means at level ALPHA with probability POWER when
their true difference is at least

    (t[1 - ALPHA/2, 2n - 2] + t[POWER, 2n - 2]) * s_pooled * sqrt(2 / n).

This is the classical minimum detectable effect of a two-sample comparison: a design statement
(what n seeds can resolve given the spread seen), not a test of any pair. It ignores the
test-point sampling that the bootstrap intervals add, so the true resolution is no finer.
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
    seeds: int             # seeds per method the design assumes (the most common count)
    methods: int           # methods pooled


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
    n = int(rows["seeds"].mode().max())
    factor = t.ppf(1 - ALPHA / 2, 2 * n - 2) + t.ppf(POWER, 2 * n - 2)
    return Detectable(stat, factor * pooled_sd * math.sqrt(2 / n), pooled_sd, n, len(rows))


def detectable_text(summary: pd.DataFrame, attack_name: str = "AutoAttack") -> str:
    """One sentence: the smallest difference this comparison can detect (empty when the
    records have too few seeds to say)."""
    found = [d for s in STATISTICS if (d := detectable_difference(summary, s)) is not None]
    if not found:
        return ""
    parts = [f"{d.points:.1f} points in {attack_name} {STATISTICS[d.stat]} (seed-to-seed "
             f"standard deviation {d.pooled_sd:.1f}, pooled over {d.methods} methods)"
             for d in found]
    return (f"Smallest detectable difference with {found[0].seeds} seeds per method (two-sided "
            f"t-test on seed means, level {ALPHA:g}, power {POWER:g}, best checkpoint): "
            + "; ".join(parts) + ". Smaller differences between two methods are not resolved "
            "by this design.")
