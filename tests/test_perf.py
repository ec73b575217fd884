"""`make perf` runs end to end at a tiny size (timings are measured, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.devtools.perf import main

TINY = ["--preset", "smoke", "--rounds", "1", "--batches", "1", "--eval-per-class", "1",
        "--accuracy-epochs", "1",
        "--warmup-epochs", "1"]
RATIOS = ("harness_vs_bare", "harness_vs_fastest_bare", "autoattack_vs_plain",
          "harness_contiguous_vs_harness", "harness_bf16_vs_harness", "ham_vs_pgd_at_time",
          "ham_vs_pgd_at_passes", "data_share_of_epoch", "validation_share_of_full_epoch",
          "checkpoint_share_of_full_epoch")


def test_perf_writes_every_ratio_with_machine_and_date(tmp_path: Path, capsys):
    out = tmp_path / "perf.json"
    assert main([*TINY, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(RATIOS) <= set(report["ratios"]) and report["data"] == "real"
    assert all(r > 0 for k, r in report["ratios"].items() if k in RATIOS)
    assert report["machine"]["cores"] and report["date"].startswith("20")
    for label in ("harness", "bare", "ham", "validation", "autoattack_harness"):
        assert report["peak_memory_mb"][label] > 0
    assert set(report["evaluation"]["attack_share"]) == {"clean", "pgd20", "cw", "autoattack"}
    printed = capsys.readouterr().out
    assert "harness epoch / bare PyTorch loop" in printed and "<= 1.02" in printed


def test_perf_on_synthetic_cifar_shaped_data(tmp_path: Path):
    out = tmp_path / "perf.json"
    assert main([*TINY, "--synthetic", "--dataset", "cifar10", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["data"].startswith("synthetic") and report["dataset"] == "cifar10"


def test_perf_bad_arguments_are_one_line(tmp_path: Path, capsys):
    assert main(["--rounds", "0", "--out", str(tmp_path / "p.json")]) == 2
    assert capsys.readouterr().out.startswith("error: --rounds")
    assert not (tmp_path / "p.json").exists()
