"""Console output for logs: one plain line per epoch and per finished run (no carriage returns)
when stderr is not a terminal; `list presets --dataset`."""

from __future__ import annotations

from pathlib import Path

from benchmark.cli.main import main
from benchmark.planning.outcomes import eta_text


def test_a_run_logged_to_a_file_prints_lines_not_bars(tmp_path: Path, capsys) -> None:
    assert main(["run", "--preset", "smoke", "--methods", "pgd_at", "--results",
                 str(tmp_path / "r"), "--no-report"]) == 0  # pytest's stderr is not a tty
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "fmnist/smoke/pgd_at/seed0: epoch 2/2: loss " in err and "worst class" in err
    assert "fairbench: 1/1 runs done in" in err


def test_quiet_prints_no_progress(tmp_path: Path, capsys) -> None:
    assert main(["run", "--preset", "smoke", "--methods", "pgd_at", "--results",
                 str(tmp_path / "r"), "--no-report", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "epoch 2/2" not in err and "runs done" not in err


def test_eta_text():
    assert eta_text(3, 36, 12 * 60) == "3/36 runs done in 12 min; about 2 h 12 min left"
    assert eta_text(2, 2, 90) == "2/2 runs done in 2 min"
    # reused runs (under 2 s) say nothing of the time left; two workers halve it
    assert eta_text(3, 13, 130, [0.1, 0.2, 120.0]) == "3/13 runs done in 2 min; about 20 min left"
    assert eta_text(3, 13, 130, [0.1, 0.2, 120.0], workers=2).endswith("about 10 min left")
    assert eta_text(2, 10, 1, [0.1, 0.2]) == "2/10 runs done in 0 min"


def test_list_presets_of_one_dataset(capsys) -> None:
    assert main(["list", "presets", "--dataset", "fmnist"]) == 0
    out = capsys.readouterr().out
    assert "[fmnist/quick]" in out and "[cifar10/" not in out
    assert main(["list", "presets", "--dataset", "svn"]) == 2
    assert "did you mean 'svhn'" in capsys.readouterr().err
