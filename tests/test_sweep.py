"""Variants and sweeps: one results directory, one table, a row per variant; warm starts pick
the matching base; bad sweeps are one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.common.errors import UserError
from benchmark.planning.plan import plan


def _labels(waves) -> list[list[str]]:
    return [sorted(job.label for job in wave) for wave in waves]


def test_a_method_sweep_is_one_variant_per_value():
    waves = plan(dataset="fmnist", preset="smoke", methods=["trades", "pgd_at"], seeds=[0],
                 sweep={"trades.beta": ["1", "3"]})
    assert _labels(waves) == [["pgd_at", "trades[beta=1]", "trades[beta=3]"]]
    jobs = {j.label: j for j in waves[0]}
    assert jobs["trades[beta=3]"].method.beta == 3.0
    assert jobs["trades[beta=3]"].paths.root.name == "seed0"
    assert jobs["trades[beta=3]"].paths.root.parent.name == "trades[beta=3]"


def test_warm_starts_pick_the_matching_base():
    # HAM's own setting: the plain pgd_at base serves every variant
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham"], seeds=[0],
                 sweep={"ham.drop_step": ["0", "1"]})
    assert _labels(waves) == [["pgd_at"], ["ham[drop_step=0]", "ham[drop_step=1]"]]
    # a protocol field: each variant trains its own base under the same protocol
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham"], seeds=[0],
                 sweep={"epochs": ["3", "4"]})
    assert _labels(waves) == [["pgd_at[epochs=3]", "pgd_at[epochs=4]"],
                              ["ham[epochs=3]", "ham[epochs=4]"]]
    ham = next(j for j in waves[1] if j.label == "ham[epochs=4]")
    assert ham.base.name.endswith("pgd_at[epochs=4]/seed0") and ham.protocol.epochs == 4


def test_a_grid_and_a_tag():
    waves = plan(dataset="fmnist", preset="smoke", methods=["trades"], seeds=[0],
                 sweep={"trades.beta": ["1", "3"], "epochs": ["2", "3"]}, tag="lr")
    assert len(waves[0]) == 4 and {j.label for j in waves[0]} >= {"trades[lr,beta=1,epochs=2]"}


@pytest.mark.parametrize(("args", "message"), [
    (["--sweep", "trades.beta"], "--sweep expects KEY=V1,V2"),
    (["--sweep", "ham.drop_step=1,2"], "is for a method that is not being run"),
    (["--sweep", "trades.beta=1/2"], "may only use letters"),
    (["--tag", "a b"], "--tag 'a b' may only use letters"),
    (["--sweep", "trades.beta=x"], "bad value 'x' for trades.beta"),
    (["--sweep", "trades.beta=1", "--sweep", "trades.beta=2"], "is given twice"),
])
def test_bad_sweeps_are_one_line(args, message, tmp_path: Path, capsys) -> None:
    code = main(["run", "--preset", "smoke", "--methods", "trades", "--results",
                 str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_sweep_runs_into_one_table(tmp_path: Path, capsys) -> None:
    results = tmp_path / "r"
    assert main(["run", "--preset", "smoke", "--methods", "trades", "--seeds", "0", "--results",
                 str(results), "--quiet", "--sweep", "trades.beta=1,3,6",
                 "--set", "epochs=1"]) == 0
    md = (results / "fmnist/smoke/report/table.md").read_text()
    for beta in ("1", "3", "6"):
        assert f"| TRADES\\[beta={beta}\\] | 1 |" in md
    table = pd.read_csv(results / "fmnist/smoke/report/table.csv")
    assert sorted(set(table["method"])) == ["trades[beta=1]", "trades[beta=3]", "trades[beta=6]"]
    # the same command again reuses all three (nothing retrained)
    assert main(["run", "--preset", "smoke", "--methods", "trades", "--seeds", "0", "--results",
                 str(results), "--quiet", "--sweep", "trades.beta=1,3,6",
                 "--set", "epochs=1", "--no-report"]) == 0
    assert "3 already finished there: reused, not retrained" in capsys.readouterr().err
    with pytest.raises(UserError):
        plan(dataset="fmnist", preset="smoke", methods=["trades"], seeds=[0],
             sweep={"trades.gamma": ["1"]})
