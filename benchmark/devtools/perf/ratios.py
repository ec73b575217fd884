"""The ratios `make perf` reports, their goals, and the accuracy cost of the speed paths."""

from __future__ import annotations

from typing import Any

from benchmark.devtools.perf.timing import Timer
from benchmark.devtools.perf.training import BARE_VARIANTS

GOALS = {"harness_vs_bare": 1.02, "harness_vs_fastest_bare": 1.05,
         "autoattack_vs_plain": 1.02}


def ratios(train: Timer, evaluation: Timer, passes: dict[str, float], channels_last: bool,
           epoch_full: float) -> dict[str, Any]:
    """Every reported ratio (medians of per-round ratios), with the bare loops compared:
    `epoch_full` is the harness's timed epoch scaled to the preset's full epoch."""
    fastest = min(BARE_VARIANTS, key=train.median)
    same = "bare+channels_last" if channels_last else "bare"
    around_epoch = train.median("validation") + train.median("checkpoint") + epoch_full
    return {
        "harness_vs_bare": train.ratio("harness", same),
        "bare_same_format": same,
        "harness_vs_fastest_bare": train.ratio("harness", fastest),
        "fastest_bare": fastest,
        "harness_contiguous_vs_harness": train.ratio("harness+contiguous", "harness"),
        "harness_bf16_vs_harness": train.ratio("harness+bf16", "harness"),
        "ham_vs_pgd_at_time": train.ratio("ham", "harness"),
        "ham_vs_pgd_at_passes": passes["ham"] / passes["harness"],
        "data_share_of_epoch": train.ratio("data", "harness"),
        "validation_share_of_full_epoch": train.median("validation") / around_epoch,
        "checkpoint_share_of_full_epoch": train.median("checkpoint") / around_epoch,
        "autoattack_vs_plain": evaluation.ratio("autoattack_harness", "autoattack_plain"),
    }


def accuracy_difference(acc: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each speed path's accuracy minus the preset default's ("harness")."""
    return {label: {k: acc[label][k] - acc["harness"][k] for k in acc["harness"]}
            for label in acc if label != "harness"}
