"""The bootstrap intervals (benchmark/report/intervals.py) against the normal approximation,
and the separation rule that decides bold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report.intervals import (
    add_intervals,
    curve_intervals,
    interval,
    replicates,
    separated,
)


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


def test_a_row_not_ranked_never_takes_the_bold():
    """A teacher row (another model) better than every method: the best method is bold."""
    from benchmark.report.table_model import MEASURED_KINDS, Column, _column_cells

    n = 2000
    pc = pd.DataFrame(_per_class("t", [0.9, 0.8], n) + _per_class("a", [0.6, 0.4], n)
                      + _per_class("b", [0.5, 0.3], n))
    summary = pd.DataFrame({"checkpoint": ["best"] * 3, "method": ["t", "a", "b"],
                            "autoattack_avg": [0.85, 0.5, 0.4],
                            "autoattack_worst": [0.8, 0.4, 0.3], "ranked": [False, True, True],
                            "train_passes": [1.0e3, 2.0e3, 3.0e3]})
    out = add_intervals(summary, pc, ["autoattack"])
    assert out["autoattack_avg_separated"].tolist() == [False, True, False]
    assert out["autoattack_avg_lo"].notna().all()  # its interval is still shown
    cost = Column("train_passes", "Passes", "own", "Passes own", MEASURED_KINDS[1], False, False)
    assert [c.bold for c in _column_cells(out, cost, 1.0)] == [False, True, False]


def test_mcnemar_by_hand():
    from benchmark.report.intervals import mcnemar_p

    assert mcnemar_p(0, 10) == pytest.approx(2 * 0.5 ** 10)     # all discordant one way
    assert mcnemar_p(5, 5) == pytest.approx(1.0) and mcnemar_p(0, 0) == 1.0
    # b=2, c=8: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_p(2, 8) == pytest.approx(2 * 56 / 1024)


def test_outcomes_round_trip_and_paired_test_on_the_same_points():
    import torch

    from benchmark.core.metrics import pack_outcomes, summarize, unpack_outcomes
    from benchmark.report.intervals import add_paired_tests, mcnemar_p
    from benchmark.runs.schema import RunRecord

    bits = [True, False, True, True, False, False, False, True, True, False, True]
    assert unpack_outcomes(pack_outcomes(torch.tensor(bits)), len(bits)) == bits

    def rec(method: str, seed: int, correct: list[bool]) -> RunRecord:
        res = {**summarize([0.5], [len(correct)], ["a"]).as_dict(), "n_points": len(correct),
               "outcomes": pack_outcomes(torch.tensor(correct))}
        return RunRecord.from_dict({
            "method": method, "dataset": "d", "preset": "p", "seed": seed, "protocol": {},
            "hparams": {}, "classes": ["a"], "env": {}, "train": {}, "eval_files": {},
            "eval_settings": {}, "history": [], "eval": {"best": {"autoattack": res}}})

    base = [True] * 6 + [False] * 6
    other = [True] * 4 + [False] * 2 + [True] * 5 + [False]   # b = 2, c = 5 per seed
    records = [rec("pgd_at", s, base) for s in (0, 1)] + [rec("x", s, other) for s in (0, 1)]
    summary = pd.DataFrame({"checkpoint": ["best", "best"], "method": ["pgd_at", "x"]})
    out = add_paired_tests(summary, records, "pgd_at").set_index("method")
    assert out.loc["x", "autoattack_vs_baseline_b"] == 4     # pooled over the two seeds
    assert out.loc["x", "autoattack_vs_baseline_c"] == 10
    assert out.loc["x", "autoattack_vs_baseline_p"] == pytest.approx(mcnemar_p(4, 10))
    assert math.isnan(out.loc["pgd_at", "autoattack_vs_baseline_p"])


def test_validation_curve_intervals_per_epoch_by_hand():
    # one seed, 2 classes of 400 validation points: epoch 1 at (0.5, 0.3), epoch 2 at (0.9, 0.9);
    # a second method at epoch 2 only (a warm start)
    rows = [("a", 0, 1, 0, 0.5), ("a", 0, 1, 1, 0.3), ("a", 0, 2, 0, 0.9), ("a", 0, 2, 1, 0.9),
            ("b", 0, 2, 0, 0.2), ("b", 0, 2, 1, 0.2)]
    frame = pd.DataFrame(rows, columns=["method", "seed", "epoch", "class_index", "accuracy"])
    frame["n"] = 400
    bands = curve_intervals(frame).set_index(["method", "epoch", "stat"])
    assert list(bands.index) == [("a", 1, "avg"), ("a", 1, "worst"), ("a", 2, "avg"),
                                 ("a", 2, "worst"), ("b", 2, "avg"), ("b", 2, "worst")]
    half = 1.96 * 0.5 * math.sqrt(0.25 / 400 + 0.21 / 400)
    lo, hi = bands.loc[("a", 1, "avg"), ["lo", "hi"]]
    assert lo == pytest.approx(0.4 - half, abs=0.006) and hi == pytest.approx(0.4 + half,
                                                                             abs=0.006)
    worst_lo, worst_hi = bands.loc[("a", 1, "worst"), ["lo", "hi"]]
    assert worst_lo < 0.3 < worst_hi
    assert bands.loc[("b", 2, "avg"), "lo"] < 0.2 < bands.loc[("b", 2, "avg"), "hi"]
