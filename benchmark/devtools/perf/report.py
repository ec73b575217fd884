"""The printed summary of a `make perf` report: the ratio table, attack shares, accuracy and
memory."""

from __future__ import annotations

from typing import Any

RATIO_ROWS = (  # (title, key of report["ratios"]); titles may name a report["ratios"] value
    ("harness epoch / bare PyTorch loop ({bare_same_format})", "harness_vs_bare"),
    ("harness epoch / fastest bare loop ({fastest_bare})", "harness_vs_fastest_bare"),
    ("per-class AutoAttack / plain pyautoattack, same points", "autoattack_vs_plain"),
    ("harness with contiguous (NCHW) tensors / harness (channels_last)",
     "harness_contiguous_vs_harness"),
    ("harness + bf16 autocast / harness", "harness_bf16_vs_harness"),
    ("HAM / PGD-AT time", "ham_vs_pgd_at_time"),
    ("HAM / PGD-AT passes", "ham_vs_pgd_at_passes"),
    ("data pipeline share of an epoch", "data_share_of_epoch"),
    ("validation share of a full epoch", "validation_share_of_full_epoch"),
    ("checkpoint share of a full epoch", "checkpoint_share_of_full_epoch"),
)


def print_ratio_table(report: dict[str, Any]) -> None:
    """The header line and the markdown table of ratios against their goals."""
    r, goals = report["ratios"], report["goals"]
    m = report["machine"]
    print(f"make perf, {report['date']}: {report['dataset']}/{report['preset']} "
          f"({report['data']} data), model {report['model']}, batch {report['batch_size']}, "
          f"{report['timed_epoch_batches']}-batch epochs, {report['rounds']} interleaved rounds, "
          f"on {m['gpu'] or m['device']} ({m['threads']} threads), start: "
          f"{report['start_weights']}")
    print("| measurement | ratio | goal |\n|---|---:|---:|")
    for title, key in RATIO_ROWS:
        goal = f"<= {goals[key]:.2f}" if key in goals else ""
        print(f"| {title.format(**r)} | {r[key]:.3f} | {goal} |")


def print_report(report: dict[str, Any]) -> None:
    """The ratio table, then each attack's share, the accuracy cost and the peak memory."""
    print_ratio_table(report)
    shares = report["evaluation"]["attack_share"]
    print("evaluation share per attack (" + str(report["evaluation"]["points"]) + " points): "
          + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    if report["accuracy"]:
        print(f"validation accuracy after {report['accuracy_epochs']} full PGD-AT epochs from "
              f"the same start, difference to the preset's default (points): "
              + "; ".join(f"{k}: clean {v['clean_avg'] * 100:+.1f}, robust avg "
                          f"{v['robust_avg'] * 100:+.1f}, robust worst "
                          f"{v['robust_worst'] * 100:+.1f}"
                          for k, v in report["accuracy_difference_vs_default"].items()))
    kind = "max allocated" if report["machine"]["gpu"] else "peak RSS of the process"
    print(f"peak memory, {kind} (MiB; before the measurements: "
          f"{report['baseline_memory_mb']:.0f}): "
          + ", ".join(f"{k} {v:.0f}" for k, v in report["peak_memory_mb"].items()))
