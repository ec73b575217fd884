"""The smallest detectable difference: the pooled seed spread and the t-test arithmetic, by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmark.report.power import detectable_difference, detectable_text


def _summary(stds: list[float], seeds: list[int]) -> pd.DataFrame:
    rows = [{"checkpoint": "best", "method": f"m{i}", "seeds": n,
             "autoattack_avg_std": sd, "autoattack_worst_std": sd / 2}
            for i, (sd, n) in enumerate(zip(stds, seeds, strict=True))]
    rows.append({"checkpoint": "last", "method": "m0", "seeds": 3,
                 "autoattack_avg_std": 0.5, "autoattack_worst_std": 0.5})  # not pooled
    return pd.DataFrame(rows)


def test_detectable_difference_by_hand():
    # pooled variance (2 * 0.02^2 + 2 * 0.04^2) / 4 = 0.001: sd 3.1623 points;
    # t(0.975, 4) = 2.776445, t(0.8, 4) = 0.940965; sqrt(2/3) = 0.816497
    d = detectable_difference(_summary([0.02, 0.04], [3, 3]), "avg")
    assert d is not None and d.seeds == 3 and d.methods == 2
    assert d.pooled_sd == pytest.approx(100 * math.sqrt(0.001))
    assert d.points == pytest.approx((2.776445 + 0.940965) * 3.162278 * 0.816497, rel=1e-5)
    assert d.median_sd == pytest.approx(3.0)                     # median of 2 and 4 points
    assert d.median_points == pytest.approx((2.776445 + 0.940965) * 3.0 * 0.816497, rel=1e-5)


def test_one_unstable_method_dominates_the_pooled_spread_not_the_median():
    # three methods at 2 points, one at 20: pooled sqrt((3 * 4 + 400) / 4) = 10.15, median 2
    d = detectable_difference(_summary([0.02, 0.02, 0.02, 0.20], [3, 3, 3, 3]), "avg")
    assert d is not None and d.pooled_sd == pytest.approx(math.sqrt(103))
    assert d.median_sd == pytest.approx(2.0)
    assert d.median_points == pytest.approx(d.points * 2.0 / math.sqrt(103))


def test_methods_of_one_seed_are_not_pooled_and_too_few_say_nothing():
    d = detectable_difference(_summary([0.02, 0.04, float("nan")], [3, 3, 1]), "avg")
    assert d is not None and d.methods == 2
    assert detectable_difference(_summary([0.02, float("nan")], [3, 1]), "avg") is None
    assert detectable_text(_summary([0.02, float("nan")], [3, 1])) == ""


def test_the_sentence_names_both_statistics():
    text = detectable_text(_summary([0.02, 0.04], [3, 3]))
    assert text.startswith("Smallest detectable difference with 3 seeds per method")
    assert "9.6 points in AutoAttack average accuracy" in text
    assert "pooled over 2 methods; 9.1 points at the median spread over methods, 3.0)" in text
    assert "4.8 points in AutoAttack worst-class accuracy" in text
    assert text.endswith("That test detects smaller true differences with probability below 80 %.")


def test_mixed_seed_counts_take_the_smaller_common_count_and_say_so():
    d = detectable_difference(_summary([0.02, 0.04, 0.03, 0.01], [2, 2, 5, 5]), "avg")
    assert d is not None and d.seeds == 2 and d.mixed
    assert "(the most common count; methods with fewer seeds resolve less)" in \
        detectable_text(_summary([0.02, 0.04, 0.03, 0.01], [2, 2, 5, 5]))


def test_no_spread_at_the_median_method_states_no_number_for_it():
    # most worst classes sit at 0 in every seed: the median method has no spread
    text = detectable_text(_summary([0.0, 0.0, 0.04], [3, 3, 3]))
    assert "pooled over 3 methods; no number at the median spread over methods: 0" in text
    assert "0.0 points" not in text


def test_no_spread_states_no_number():
    text = detectable_text(_summary([0.0, 0.0], [3, 3]))
    assert "0.0 points" not in text
    assert "none stated for AutoAttack average accuracy (every seed" in text
