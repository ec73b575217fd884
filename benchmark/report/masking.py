"""The gradient-masking flag: a method whose PGD-20 accuracy exceeds its AutoAttack accuracy by
clearly more than the baseline's does.

AutoAttack is stronger than PGD-20, so every model loses some accuracy from one to the other
(PGD-AT on CIFAR-10: about 4 points); a method that hides its gradients loses much more (PGD-20
is fooled by the masking, AutoAttack's APGD-DLR, targeted and black-box attacks are not). The
flag compares each method's gap with PGD-AT's own (the *excess* gap) on the seed means of the
best checkpoint, for the average and the worst class; without a PGD-AT row, the gap itself.
"""

from __future__ import annotations

import math

import pandas as pd

from benchmark.report.expected import BASELINE
from benchmark.report.table_model import display_names

MARGIN_POINTS = 5.0  # excess gap (accuracy points) above which a method is flagged
VIEWS = ("avg", "worst")


def masking_frame(summary: pd.DataFrame, checkpoint: str = "best") -> pd.DataFrame:
    """Per method: PGD-20 and AutoAttack (avg, worst) in %, their gaps, the excess over the
    baseline's gaps, and `flagged` (an excess above MARGIN_POINTS in either view)."""
    need = [f"{a}_{v}" for a in ("pgd20", "autoattack") for v in VIEWS]
    if any(c not in summary for c in need):
        return pd.DataFrame()
    rows = summary[summary["checkpoint"] == checkpoint].set_index("method")
    base = rows.loc[BASELINE] if BASELINE in rows.index else None
    out = []
    for method, r in rows.iterrows():
        row: dict = {"method": method}
        for v in VIEWS:
            pgd, aa = 100 * r[f"pgd20_{v}"], 100 * r[f"autoattack_{v}"]
            ref = 0.0 if base is None else 100 * (base[f"pgd20_{v}"] - base[f"autoattack_{v}"])
            row.update({f"pgd20_{v}": pgd, f"autoattack_{v}": aa, f"gap_{v}": pgd - aa,
                        f"excess_{v}": pgd - aa - ref})
        row["flagged"] = any(row[f"excess_{v}"] > MARGIN_POINTS for v in VIEWS
                             if not math.isnan(row[f"excess_{v}"]))
        out.append(row)
    return pd.DataFrame(out)


def masking_text(summary: pd.DataFrame, pgd_steps: str = "20", checkpoint: str = "best") -> str:
    """One sentence: the rule, then each flagged method with its numbers (or that none is);
    `pgd_steps`: the recorded PGD evaluation's steps (the PGD-20 column's real name)."""
    frame = masking_frame(summary, checkpoint)
    if frame.empty:
        return ""
    against = (f"more than {display_names([BASELINE])[BASELINE]}'s gap"
               if BASELINE in set(frame["method"]) else "in all")
    rule = (f"Gradient-masking flag (PGD-{pgd_steps} accuracy above AutoAttack accuracy by "
            f"{MARGIN_POINTS:g} points {against}, average or worst class, {checkpoint} "
            f"checkpoint, seed means)")
    flagged = frame[frame["flagged"]]
    if flagged.empty:
        return f"{rule}: no method is flagged."
    names = display_names(flagged["method"].tolist())
    parts = [f"{names[r.method]} (average {r.pgd20_avg:.1f} vs {r.autoattack_avg:.1f}, gap "
             f"{r.gap_avg:+.1f}, excess {r.excess_avg:+.1f}; worst class {r.pgd20_worst:.1f} vs "
             f"{r.autoattack_worst:.1f}, excess {r.excess_worst:+.1f})"
             for r in flagged.itertuples()]
    return f"{rule}: " + "; ".join(parts) + "."
