"""The last checkpoint may keep fewer AutoAttack points than the best one (aa_last_per_class):
each record holds its own count and the caption says both."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.catalog import get_protocol
from benchmark.cli.main import main


def test_the_last_checkpoint_keeps_fewer_autoattack_points(tmp_path: Path) -> None:
    results = tmp_path / "r"
    assert main(["run", "--dataset", "fmnist", "--preset", "smoke", "--methods", "pgd_at",
                 "--results", str(results), "--quiet", "--set", "aa_per_class=2",
                 "--set", "aa_last_per_class=1"]) == 0
    root = results / "fmnist" / "smoke"
    evals = json.loads((root / "pgd_at" / "seed0" / "record.json").read_text())["eval"]
    assert evals["best"]["autoattack"]["n_points"] == 20
    assert evals["last"]["autoattack"]["n_points"] == 10
    assert evals["best"]["clean"]["n_points"] == evals["last"]["clean"]["n_points"] == 40
    assert "2 (best), 1 (last) (AutoAttack)" in (root / "report" / "table.md").read_text()


def test_the_reference_preset_separates_half_a_point_per_class():
    p = get_protocol("fmnist", "reference")
    assert (p.test_per_class, p.aa_per_class, p.aa_last_per_class) == (200, 200, 50)
    assert p.for_checkpoint("last").aa_per_class == 50 and p.for_checkpoint("best") is p
