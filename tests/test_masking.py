"""The gradient-masking flag: a method whose PGD-20 accuracy exceeds its AutoAttack accuracy by
more than the margin beyond PGD-AT's own gap (average or worst class) is flagged, with its
numbers; without a PGD-AT row the gap itself counts."""

from __future__ import annotations

import pandas as pd

from benchmark.report.masking import MARGIN_POINTS, masking_frame, masking_text


def _summary(rows: dict[str, tuple[float, float, float, float]]) -> pd.DataFrame:
    """method -> (pgd20 avg, AA avg, pgd20 worst, AA worst) as fractions, best checkpoint."""
    return pd.DataFrame([{"checkpoint": "best", "method": m, "pgd20_avg": a, "autoattack_avg": b,
                          "pgd20_worst": c, "autoattack_worst": d}
                         for m, (a, b, c, d) in rows.items()])


def test_excess_over_the_baseline_gap_flags_by_hand():
    summary = _summary({"pgd_at": (0.50, 0.46, 0.20, 0.18),   # gap 4 / 2: AutoAttack's edge
                        "ham": (0.52, 0.42, 0.20, 0.18),      # gap 10: excess 6 > 5
                        "trades": (0.50, 0.45, 0.25, 0.16),   # worst gap 9: excess 7 > 5
                        "faal": (0.50, 0.42, 0.20, 0.18)})    # gap 8: excess 4, not flagged
    frame = masking_frame(summary).set_index("method")
    assert round(frame.loc["ham", "excess_avg"], 6) == 6.0 and frame.loc["ham", "flagged"]
    assert round(frame.loc["trades", "excess_worst"], 6) == 7.0 and frame.loc["trades", "flagged"]
    assert not frame.loc["faal", "flagged"] and not frame.loc["pgd_at", "flagged"]
    text = masking_text(summary)
    assert f"by {MARGIN_POINTS:g} points more than PGD-AT's gap" in text
    assert "HAM (average 52.0 vs 42.0, gap +10.0, excess +6.0" in text and "FAAL" not in text


def test_without_a_baseline_the_gap_counts_and_none_flagged_is_said():
    assert "HAM" in masking_text(_summary({"ham": (0.52, 0.42, 0.2, 0.2)}))
    assert masking_text(_summary({"ham": (0.50, 0.48, 0.2, 0.2)})).endswith(
        "no method is flagged.")
    assert masking_text(pd.DataFrame({"checkpoint": ["best"], "method": ["x"]})) == ""
