"""The bootstrap intervals (benchmark/report/intervals.py) against the normal approximation,
and the separation rule that decides bold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report.intervals import add_intervals, interval, replicates, separated


def test_one_seed_interval_matches_the_binomial_standard_error():
    # class mean of two classes at 0.5 and 0.3, 400 points each:
    # se = 0.5 sqrt(0.25/400 + 0.21/400) = 0.01696; 95 % half width 1.96 se = 0.0332
    reps = replicates([(np.array([200, 120]), np.array([400, 400]))], "avg", reps=20000)
    lo, hi = interval(reps)
    half = 1.96 * 0.5 * math.sqrt(0.25 / 400 + 0.21 / 400)
    assert lo == pytest.approx(0.4 - half, abs=0.004) and hi == pytest.approx(0.4 + half,
                                                                             abs=0.004)


def test_worst_class_and_seeds_widen_the_interval():
    one = interval(replicates([(np.array([50, 30]), np.array([100, 100]))], "worst"))
    # a second seed with a different worst class: the seed draw adds its own spread
    two = interval(replicates([(np.array([50, 30]), np.array([100, 100])),
                               (np.array([50, 10]), np.array([100, 100]))], "worst"))
    assert one[0] < 0.3 < one[1]
    assert two[1] - two[0] > one[1] - one[0]
    assert two[0] < 0.2 < two[1]


def test_separation():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.01, 4000)
    assert separated(a, rng.normal(0.4, 0.01, 4000))
    assert not separated(a, rng.normal(0.49, 0.01, 4000))
    assert separated(rng.normal(0.4, 0.01, 4000), a, higher_better=False)


def _per_class(method: str, accs: list[float], n: int) -> list[dict]:
    return [{"method": method, "seed": 0, "checkpoint": "best", "attack": "autoattack",
             "class_index": i, "accuracy": a, "n": n} for i, a in enumerate(accs)]


@pytest.mark.parametrize(("n", "bold"), [(5, False), (2000, True)])
def test_best_is_marked_only_when_separated(n: int, bold: bool):
    pc = pd.DataFrame(_per_class("a", [0.6, 0.4], n) + _per_class("b", [0.5, 0.3], n))
    summary = pd.DataFrame({"checkpoint": ["best", "best"], "method": ["a", "b"],
                            "autoattack_avg": [0.5, 0.4], "autoattack_worst": [0.4, 0.3]})
    out = add_intervals(summary, pc, ["autoattack"])
    assert out["autoattack_avg_separated"].tolist() == [bold, False]
    assert (out["autoattack_avg_lo"] <= out["autoattack_avg"]).all()
    assert (out["autoattack_avg"] <= out["autoattack_avg_hi"]).all()
