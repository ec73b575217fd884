"""`fairbench compare`: two results trees paired run by run, hand-computed differences."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from test_report import DATASET, PRESET, make_results

from benchmark.cli.main import main
from benchmark.report.compare import compare, loss_digits, markdown, summary


def _edit(root: Path, run: str, change) -> None:
    path = root / DATASET / PRESET / run / "record.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.fixture()
def trees(tmp_path: Path) -> tuple[Path, Path]:
    a = make_results(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


def test_loss_digits_counts_shared_significant_digits() -> None:
    assert loss_digits(2.0, 2.0) == loss_digits(0.0, 0.0) == math.inf
    assert loss_digits(2.0, 2.0001) == 4          # relative difference 5e-5
    assert loss_digits(9.99, 10.01) == 2          # 2e-3
    assert loss_digits(1.0, 2.0) == 0
    assert math.isnan(loss_digits(math.nan, 1.0))


def test_identical_trees_reproduce_every_number(trees: tuple[Path, Path]) -> None:
    for root in trees:  # a checkpoint without an epoch (a scored model), a zero loss
        _edit(root, "pgd_at/seed1", lambda r: r["eval"]["best"].update(epoch=None))
        _edit(root, "trades/seed0", lambda r: r["history"][0].update(loss=0.0))
    comp = compare(*trees, DATASET, PRESET)
    assert sorted(comp.records_a) == ["frl_rwrm/seed0", "ham/seed0", "pgd_at/seed0",
                                      "pgd_at/seed1", "trades/seed0", "trades/seed1"]
    assert comp.only_a == comp.only_b == [] and comp.key_differs == []
    s = summary(comp)
    assert list(zip(s["checkpoint"], s["attack"], strict=True)) == [  # the report's order
        (c, a) for c in ("best", "last") for a in ("clean", "pgd20", "cw", "autoattack")]
    assert (s["identical"] == s["pairs"]).all() and (s["epoch_moved"] == 0).all()
    assert (s["max_abs_d_avg"] == 0).all()
    text = markdown(comp, "autoattack", "best")
    assert "Every pair has the same run key" in text
    assert "| pgd\\_at/seed0 | equal (epoch 1) | 5 / 5 | 35.0 | 35.0 | +0.0 | 20.0 | 20.0 | " \
           "+0.0 |" in text
    assert "| pgd\\_at/seed1 | equal (epoch 1) | — / — |" in text
    assert "| trades/seed0 | equal (epoch 1) |" in text
    assert "| frl\\_rwrm/seed0 | equal (epoch 4) |" in text  # warm-started at epoch 3


def test_moved_numbers_epochs_keys_and_unpaired_runs(trees: tuple[Path, Path]) -> None:
    a, b = trees

    def moved(record: dict) -> None:  # AutoAttack of the best checkpoint: 2 of 5 points moved
        per_class = [0.50, 0.30, 0.40, 0.40]  # was [0.50, 0.30, 0.20, 0.40]
        record["eval"]["best"]["autoattack"]["per_class"] = per_class
        record["eval"]["best"]["autoattack"]["avg"] = sum(per_class) / 4
        record["eval"]["best"]["autoattack"]["worst"] = 0.30
        record["eval"]["best"]["epoch"] = 4
        record["history"][0]["loss"] = 0.4004  # epoch 1 loss was 2.0 / 1 = 2.0

    _edit(b, "pgd_at/seed0", moved)
    _edit(b, "frl_rwrm/seed0", lambda r: r["hparams"].update(tau1=0.1))
    shutil.rmtree(b / DATASET / PRESET / "ham")
    comp = compare(a, b, DATASET, PRESET)
    assert comp.only_a == ["ham/seed0"] and comp.only_b == []
    assert comp.key_differs == ["frl_rwrm/seed0"]
    row = comp.pairs.query("run == 'pgd_at/seed0' and checkpoint == 'best' and "
                           "attack == 'autoattack'").iloc[0]
    assert row.d_avg == pytest.approx(5.0) and row.d_worst == pytest.approx(10.0)
    assert (row.epoch_a, row.epoch_b) == (5, 4)
    s = summary(comp).set_index(["checkpoint", "attack"])
    aa = s.loc[("best", "autoattack")]
    # the summary leaves out the pair whose key differs: 4 pairs, Δ avg = 5, 0, 0, 0
    assert (aa.pairs, aa.identical, aa.epoch_moved) == (4, 3, 1)
    assert aa.max_abs_d_avg == pytest.approx(5.0) and aa.median_abs_d_avg == 0
    assert aa.sd_d_avg == pytest.approx(math.sqrt(((5 - 1.25) ** 2 + 3 * 1.25 ** 2) / 3))
    # the other attacks of the moved run carry its moved epoch, nothing else
    assert s.loc[("best", "clean")].identical == 3 and s.loc[("last", "clean")].identical == 4
    text = markdown(comp, "autoattack", "best")
    assert ("Run keys differ (another spec or code, not only the environment; shown below but "
            "left out of the summary): frl\\_rwrm/seed0.") in text
    assert "| frl\\_rwrm/seed0 (key differs) | equal (epoch 4) |" in text
    assert "| pgd\\_at/seed0 | 0 (epoch 1) | 5 / 4 | 35.0 | 40.0 | +5.0 | 20.0 | 30.0 | " \
           "+10.0 |" in text
    assert "5 runs in both; only in A: 1: ham/seed0; only in B: 0." in text


@pytest.fixture()
def cli_trees(trees: tuple[Path, Path]) -> tuple[Path, Path]:
    """The trees under a registered dataset and preset (the CLI checks the names first)."""
    for root in trees:
        (root / "fmnist").mkdir()
        (root / DATASET / PRESET).rename(root / "fmnist" / "quick")
    return trees


def test_cli_prints_and_writes_the_comparison(cli_trees: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "compare.md"
    argv = ["compare", *map(str, cli_trees), "--dataset", "fmnist", "--preset", "quick",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text() and "| checkpoint | attack | pairs |" in printed


@pytest.mark.parametrize("extra, message", [
    (["--attack", "fgsm"], "unknown --attack 'fgsm'; use one of clean, pgd20, cw, autoattack"),
    (["--checkpoint", "first"], "unknown --checkpoint 'first'; use best or last"),
    (["--preset", "reference"], "no finished run of fmnist/reference is in both"),
    (["--preset", "quik"], "unknown preset 'quik' for fmnist; available: full, quick,"),
])
def test_cli_bad_input_is_one_line(cli_trees: tuple[Path, Path], extra: list[str], message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", *map(str, cli_trees), "--dataset", "fmnist", "--preset", "quick", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_missing_tree_names_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "is not a results directory" in capsys.readouterr().err
