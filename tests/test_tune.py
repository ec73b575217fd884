"""Equal-budget tuning: declared search spaces, the configurations tried, selection on
validation only, and `fairbench tune` end to end on the smoke preset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from benchmark.catalog import get_protocol, method_registry
from benchmark.cli.main import main
from benchmark.core.protocol import TUNE_CRITERIA
from benchmark.core.search_space import LR_FACTOR, Choice, LogRange, space_problems
from benchmark.tuning.sampling import configurations
from benchmark.tuning.search import lr_overrides
from benchmark.tuning.selection import CRITERIA, score, select

METHODS = [m for m in method_registry().names() if not m.startswith("_")]
SMOKE = ["--dataset", "fmnist", "--preset", "smoke", "--quiet"]


@pytest.mark.parametrize("name", METHODS)
def test_every_declared_search_space_is_valid(name: str):
    cls = method_registry().get(name)
    assert space_problems(cls) == []
    assert LR_FACTOR.low <= 1 / 7 and LR_FACTOR.high >= 7  # absorbs a 7x loss scale either way


def test_a_bad_search_space_is_named():
    from benchmark.common.settings import setting

    @dataclass
    class Bad:
        name: ClassVar[str] = "bad"
        beta: float = setting(6.0, ge=0)
        patience: int = setting(1, ge=0)
        search_space: ClassVar[dict] = field(default={
            "gamma": LogRange(1, 2), "beta": LogRange(-1.0, 3.0),
            "patience": Choice((-1, 1))})

    problems = " | ".join(space_problems(Bad))
    assert "'gamma', not a hyperparameter" in problems
    assert "LogRange needs 0 < low < high" in problems
    assert "reaches -1, which must be >= 0" in problems


def test_configurations_start_with_the_default_and_grow_by_prefix():
    trades = method_registry().get("trades")
    eight = configurations(trades, 8)
    assert eight[0] == {"lr_factor": 1.0, "beta": 6.0}
    assert configurations(trades, 12)[:8] == eight  # a larger budget keeps every configuration
    factors = [c["lr_factor"] for c in eight]
    assert len(set(map(str, eight))) == 8 and min(factors) < 0.3 and max(factors) > 3
    assert all(1.0 <= c["beta"] <= 12.0 for c in eight)


def test_lr_factor_scales_lr_and_finetune_lr_and_divides_weight_decay():
    p = get_protocol("fmnist", "quick")
    assert lr_overrides(p, 1.0) == {}
    out = lr_overrides(p, 4.0)
    assert out["lr"] == pytest.approx(4 * p.lr) and out["finetune_lr"] == pytest.approx(
        4 * p.finetune_lr) and out["weight_decay"] == pytest.approx(p.weight_decay / 4)


def test_selection_reads_the_validation_history_at_the_best_checkpoint():
    assert set(CRITERIA) == set(TUNE_CRITERIA)

    def line(epoch: int, avg: float, worst: float, best: bool) -> dict:
        return {"epoch": epoch, "best": best, "val": {"robust_avg": avg, "robust_worst": worst}}

    history = [line(1, 0.5, 0.1, True), line(2, 0.4, 0.3, False), line(3, 0.6, 0.0, True)]
    assert score(history, "robust_avg") == 0.6            # epoch 3: the checkpoint it reports
    assert score(history, "robust_worst") == 0.0
    assert score(history, "robust_avg_worst") == pytest.approx(0.3)
    assert score([], "robust_avg") is None               # a failed run is never selected
    assert select([None, 0.3, 0.5, 0.5]) == 2            # ties: the earlier configuration
    assert select([None, None]) is None


def _runs(root: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in root.glob("fmnist/smoke/*/seed*") if p.is_dir()}


def test_tune_end_to_end(tmp_path: Path):
    results = tmp_path / "r"
    argv = ["tune", *SMOKE, "--methods", "ham", "--seeds", "0,1", "--budget", "2",
            "--results", str(results), "--no-report"]
    assert main(argv) == 0
    tune = json.loads((results / "fmnist/smoke/tune.json").read_text())
    assert tune["budget"] == 2 and tune["criterion"] == "robust_avg_worst"
    assert set(tune["methods"]) == {"pgd_at", "ham"}  # the base is tuned first
    for method, search in tune["methods"].items():
        labels = [c["label"] for c in search["configs"]]
        assert len(labels) == 2 and search["selected"] in labels
        for label in labels:  # the search ran on the first seed only
            run = results / "fmnist/smoke" / label / "seed0"
            assert (run / "train_done.json").exists()
            evaluated = (run / "record.json").exists()
            assert evaluated == (label in (search["selected"], method))  # plain run: default row
            assert (run / "eval").exists() == evaluated  # the test set is read only if selected
    ham = tune["methods"]["ham"]
    assert ham["base"] == tune["methods"]["pgd_at"]["selected"]
    for label in {ham["selected"], "ham"}:  # both views, every seed, evaluated
        assert (results / "fmnist/smoke" / label / "seed1" / "record.json").exists()
    logs = {p: p.stat().st_mtime_ns for p in results.glob("fmnist/smoke/*/seed*/train.jsonl")}
    records = {p: p.stat().st_mtime_ns for p in results.glob("fmnist/smoke/*/seed*/record.json")}
    assert main(argv) == 0  # idempotent: nothing trained or evaluated again
    assert logs == {p: p.stat().st_mtime_ns for p in logs}
    assert records == {p: p.stat().st_mtime_ns for p in records}
    assert json.loads((results / "fmnist/smoke/tune.json").read_text()) == tune
    assert main(["report", "--dataset", "fmnist", "--preset", "smoke", "--results",
                 str(results), "--format", "md,csv,html"]) == 0
    report = results / "fmnist/smoke/report"
    appendix = (report / "tune.csv").read_text()
    assert appendix.count("\n") == 1 + 4 and (report / "tune_lr.png").exists()
    for stem in ("avg_vs_worst", "per_class_robust", "val_curves"):  # one figure per view
        assert (report / f"{stem}.png").exists() and (report / f"{stem}_defaults.png").exists()
    table = (report / "table.md").read_text()
    assert "Equal-budget tuning: 2 configurations per method" in table
    for view in ("protocol defaults", "tuned (equal budget)"):  # each view in its own panel
        assert f"Best checkpoint (selected on validation): {view}" in table
    rows = pd.read_csv(report / "table.csv")
    views = rows[rows["checkpoint"] == "best"].set_index("method")["view"]
    assert views["ham"].startswith("defaults") and "tuned" in views[ham["selected"]]
    side = pd.read_csv(report / "views.csv").set_index("method")  # both views side by side
    assert list(side.index) == ["pgd_at", "ham"] and side.loc["ham", "tuned_label"] == \
        ham["selected"]
    assert set(side["defaults_rank"]) == set(side["tuned_rank"]) == {1, 2}
    assert "| Tuned configuration |" in (report / "views.md").read_text()
    assert "Both views side by side" in (report / "index.html").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--budget", "0"], "tune_budget=0 must be >= 1"),
    (["--criterion", "best"], "tune_criterion='best' must be one of"),
    (["--set", "trades.beta=3"], "fixes a hyperparameter that `fairbench tune` searches"),
])
def test_bad_tuning_input_is_one_line_before_any_work(tmp_path: Path, capsys, extra, message):
    results = tmp_path / "r"
    assert main(["tune", *SMOKE, "--methods", "trades", "--results", str(results),
                 *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not results.exists()


def test_a_search_cut_short_selects_nothing_and_reads_no_test_point(tmp_path: Path):
    from benchmark.planning.local import run_local
    from benchmark.runs.job import Job
    from benchmark.tuning.flow import TuneRequest, tune

    template = Job("fmnist", "smoke", "", 0, results=str(tmp_path), show_progress=False)
    request = TuneRequest(template, ["ham"], [0], budget=2, criterion="robust_avg")

    def all_but_the_last(waves):  # as if the last configuration's run was killed
        return run_local([wave[:-1] if i == len(waves) - 1 else wave
                          for i, wave in enumerate(waves)])

    outcome = tune(request, all_but_the_last)
    assert "did not finish" in outcome.unselected["pgd_at"]
    assert "its base pgd_at has no selection" in outcome.unselected["ham"]
    tune_file = json.loads((tmp_path / "fmnist/smoke/tune.json").read_text())
    assert tune_file["methods"]["pgd_at"]["selected"] is None and "ham" not in tune_file["methods"]
    assert not list(tmp_path.glob("fmnist/smoke/*/seed*/eval"))  # no test point read


def test_a_dependent_names_its_tuned_base():
    from benchmark.runs.job import BaseChoice
    from benchmark.tuning.search import config_variant

    assert config_variant(0, None) == "" and config_variant(2, None) == "tune=2"
    assert config_variant(0, BaseChoice("")) == ""  # the plain base: the plain run
    assert config_variant(2, BaseChoice("tune=3")) == "base-tune3,tune=2"


def test_a_warm_start_trains_with_its_own_weight_decay(tmp_path: Path):
    """A tuned dependent's weight decay (wd / f) must not be its base's, which the base's
    optimizer state would otherwise bring along."""
    from benchmark.runs.job import BaseChoice, Job
    from benchmark.runs.run import run_job

    base = BaseChoice("tune=1", {"lr": 0.04, "weight_decay": 0.002})
    job = Job("fmnist", "smoke", "ham", 0, results=str(tmp_path), show_progress=False,
              overrides={"weight_decay": 0.0001}, base_choice=base, evaluate=False)
    run = job.resolve()
    assert run.base.protocol.weight_decay == 0.002 and run.protocol.weight_decay == 0.0001
    run_job(run.base)  # the base (its own weight decay), trained first
    import benchmark.core.trainer as trainer_mod

    seen = []
    original = trainer_mod.Trainer._train_epoch

    def spy(self, epoch, *args):
        seen.append(self.optimizer.param_groups[0]["weight_decay"])
        return original(self, epoch, *args)

    trainer_mod.Trainer._train_epoch = spy
    try:
        run_job(run)
    finally:
        trainer_mod.Trainer._train_epoch = original
    assert seen and set(seen) == {0.0001}


def test_two_runs_of_one_name_with_different_settings_are_refused(tmp_path: Path):
    from benchmark.common.errors import UserError
    from benchmark.planning.plan import plan_jobs
    from benchmark.runs.job import Job

    a = Job("fmnist", "smoke", "trades", 0, results=str(tmp_path))
    b = Job("fmnist", "smoke", "trades", 0, results=str(tmp_path), overrides={"lr": 0.02})
    with pytest.raises(UserError, match="planned twice with different settings"):
        plan_jobs([a, b])


def test_the_appendix_keeps_no_numbers_for_a_diverged_or_unfinished_configuration(tmp_path):
    """A configuration that diverged after a good first epoch, one still running and one
    finished: only the finished one shows validation numbers and a criterion."""
    from benchmark.report.tuning import _latex, _markdown, tuning_frame
    from benchmark.tuning.tune_file import read_tune

    root = tmp_path / "fmnist" / "smoke"
    labels = ["pgd_at", "pgd_at[tune=1]", "pgd_at[tune=2]"]
    tune = {"budget": 3, "criterion": "robust_avg", "methods": {"pgd_at": {
        "seed": 0, "selected": "pgd_at",
        "configs": [{"index": i, "label": label, "settings": {"lr_factor": 1.0 + i}}
                    for i, label in enumerate(labels)]}}}
    root.mkdir(parents=True)
    (root / "tune.json").write_text(json.dumps(tune))
    good = {"epoch": 1, "best": True,
            "val": {"clean_avg": 0.8, "robust_avg": 0.5, "robust_worst": 0.2}}
    for label in labels:
        run = root / label / "seed0"
        run.mkdir(parents=True)
        (run / "train.jsonl").write_text(json.dumps(good) + "\n")
    (root / labels[0] / "seed0" / "train_done.json").write_text("{}")
    (root / labels[1] / "seed0" / "failed.json").write_text(json.dumps(
        {"kind": "non-finite", "reason": "non-finite loss (nan) at epoch 2, batch 3"}))
    frame = tuning_frame(tmp_path, "fmnist", "smoke", read_tune(root / "tune.json"))
    assert list(frame["status"]) == ["finished", "diverged", "not finished"]
    assert frame["criterion"].tolist()[0] == pytest.approx(50.0)
    assert frame[["val_robust_avg", "criterion"]].iloc[1:].isna().all().all()
    md = _markdown(frame, "caption")
    assert "| diverged |  |  |  |  |  |  |" in md and "nan" not in md
    assert "nan" not in _latex(frame, "caption") and "diverged" in _latex(frame, "caption")


def test_a_decided_search_stands_when_its_runs_change(tmp_path: Path):
    """Once decided, a search is never re-scored by a later `fairbench tune` with the same
    settings (a run trained again, e.g. on another machine after its checkpoint was lost, cannot
    flip the selection); the appendix shows what the selection read and names the changed run.
    Another criterion decides again, from the histories, without retraining."""
    from benchmark.planning.local import run_local
    from benchmark.report.render import md_escape
    from benchmark.report.tuning import tuning_frame, write_tuning
    from benchmark.runs.job import Job
    from benchmark.tuning.flow import TuneRequest, tune
    from benchmark.tuning.tune_file import read_tune

    template = Job("fmnist", "smoke", "", 0, results=str(tmp_path), show_progress=False)
    request = TuneRequest(template, ["pgd_at"], [0], budget=2, criterion="robust_avg")
    assert not tune(request, run_local).failures
    root = tmp_path / "fmnist" / "smoke"
    first = read_tune(root / "tune.json").methods["pgd_at"]
    chosen = first.selected
    other = next(c.label for c in first.configs if c.label != chosen)
    for config in first.configs:  # the evidence is each run's line at its best checkpoint
        history = [json.loads(x) for x in (root / config.label / "seed0" /
                                           "train.jsonl").read_text().splitlines()]
        best = [x for x in history if x.get("best")][-1]
        assert config.evidence == {"epoch": best["epoch"], "val": best["val"]}

    log = root / other / "seed0" / "train.jsonl"  # as if trained again: now it scores best
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for line in lines:
        line["val"] = {**line["val"], "robust_avg": 1.0, "robust_worst": 1.0}
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    mtimes = {p: p.stat().st_mtime_ns for p in root.glob("*/seed0/train.jsonl")}
    assert not tune(request, run_local).failures
    again = read_tune(root / "tune.json").methods["pgd_at"]
    assert again.selected == chosen and again.as_dict() == first.as_dict()
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}  # nothing launched again

    tune_file = read_tune(root / "tune.json")
    frame = tuning_frame(tmp_path, "fmnist", "smoke", tune_file).set_index("label")
    assert frame.loc[other, "retrained"] and not frame.loc[chosen, "retrained"]
    assert frame.loc[other, "val_robust_avg"] < 100  # what the selection read, not the new run
    write_tuning(frame.reset_index(), tune_file, tmp_path / "report")
    assert f"differs from what the selection read (shown here): {md_escape(other)}." in \
        (tmp_path / "report" / "tune.md").read_text()

    other_criterion = TuneRequest(template, ["pgd_at"], [0], budget=2, criterion="robust_worst")
    assert not tune(other_criterion, run_local).failures
    assert read_tune(root / "tune.json").methods["pgd_at"].selected == other
    assert (root / other / "seed0" / "record.json").exists()


def test_the_appendix_latex_of_seventeen_searches_fits_a_one_column_article(tmp_path: Path):
    """136 configurations with the registry's longest settings: a longtable that breaks across
    pages (a float that large does not fit one), no overfull box, a package-free mark."""
    from latex_check import pdflatex_log

    from benchmark.report.render import render_standalone
    from benchmark.report.tuning import COLUMNS, _latex

    rows = [{"method": "trades_dafa", "index": i % 8, "label": f"trades_dafa[tune={i}]",
             "settings": "lr x0.534, lambda_eps=0.234, cfps_scale=0.661, lambda_beta=0.466",
             "lr_factor": 0.534, "status": "diverged" if i % 9 == 0 else "finished",
             "best_epoch": 3, "val_clean_avg": 60.0, "val_robust_avg": 45.25,
             "val_robust_worst": 1.5, "criterion": 23.375, "candidate": True,
             "selected": i % 8 == 3, "retrained": False} for i in range(136)]
    tex = _latex(pd.DataFrame(rows, columns=COLUMNS), "Equal-budget tuning: " + "words " * 80)
    assert tex.startswith("% fairbench tuning appendix; needs \\usepackage{booktabs,longtable}")
    assert "checkmark" not in tex and tex.count(" & yes \\\\") == 17
    (tmp_path / "tune.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(render_standalone("tune"))
    log = pdflatex_log(tmp_path, "doc.tex")
    assert "Overfull" not in log, log[log.find("Overfull"):][:300]
    assert "Float too large" not in log
