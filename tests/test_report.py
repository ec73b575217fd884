"""Report: collection of records, seed aggregation, golden LaTeX/Markdown tables, CSVs, pdflatex
compile, figures (checked as objects), and the error when nothing has finished.

Regenerate the golden files after an intended change with
`FAIRBENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_report.py` and review the diff.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from latex_check import pdflatex_log

from benchmark.common.errors import UserError
from benchmark.core.metrics import summarize
from benchmark.report import build_report
from benchmark.report.aggregate import per_class_summary, rho, seed_stats, summary_frame
from benchmark.report.collect import collect
from benchmark.report.expected import find_runs
from benchmark.report.intervals import curve_intervals
from benchmark.report.plot_classes import per_class_figure
from benchmark.report.plots import curves_figure, pareto_front, state_figure, tradeoff_figure
from benchmark.report.render import latex_escape, md_escape
from benchmark.report.table_model import build_table, columns_for, si

GOLDEN = Path(__file__).parent / "golden"
CLASSES = ["airplane", "bird", "cat", "dog"]
DATASET, PRESET = "toy", "unit"
# AutoAttack per-class accuracy of the best checkpoint, per finished run
ROBUST = {
    ("pgd_at", 0): [0.50, 0.30, 0.20, 0.40],
    ("pgd_at", 1): [0.48, 0.32, 0.24, 0.36],
    ("trades", 0): [0.46, 0.34, 0.28, 0.40],
    ("trades", 1): [0.44, 0.30, 0.36, 0.42],
    ("frl_rwrm", 0): [0.40, 0.36, 0.34, 0.38],
    ("ham", 0): [0.42, 0.33, 0.30, 0.37],
}
CLEAN = [0.90, 0.80, 0.70, 0.85]
COST = {"pgd_at": 50.0, "trades": 75.0, "frl_rwrm": 10.0, "ham": 45.0}  # seconds
WARM = {"frl_rwrm": {"method": "pgd_at", "epoch": 3, "run_key": "abc"}}
EPOCHS = 5


def _summary(per_class: list[float], n: int, clean: list[float] | None) -> dict[str, Any]:
    out = summarize(per_class, [n] * len(per_class), CLASSES).as_dict()
    if clean is not None:
        out["boundary_error"] = [round(max(c - a, 0.0), 6)
                                 for c, a in zip(clean, per_class, strict=True)]
    return out


def _eval(robust: list[float], epoch: int) -> dict[str, Any]:
    pgd = [min(c, a + 0.04) for c, a in zip(CLEAN, robust, strict=True)]
    cw = [min(c, a + 0.02) for c, a in zip(CLEAN, robust, strict=True)]
    return {"clean": _summary(CLEAN, 10, None), "pgd20": _summary(pgd, 10, CLEAN),
            "cw": _summary(cw, 10, CLEAN), "autoattack": _summary(robust, 5, CLEAN),
            "epoch": epoch, "seconds": {"clean": 0.1, "pgd20": 1.0, "cw": 1.0, "autoattack": 5.0}}


def _history(method: str, seed: int, begin: int) -> list[dict[str, Any]]:
    lines = []
    for epoch in range(begin + 1, EPOCHS + 1):
        robust = 0.05 * epoch + 0.01 * seed + 0.02 * sorted(COST).index(method)
        line: dict[str, Any] = {
            "epoch": epoch, "lr": 0.1, "loss": 2.0 / epoch, "updates": 10, "skipped_batches": 0,
            "seconds": 10.0, "passes": 100, "best": epoch == EPOCHS,
            "val": {"clean_avg": 0.8, "clean_worst": 0.6, "robust_avg": robust,
                    "robust_worst": robust / 2, "clean_per_class": CLEAN,
                    "robust_per_class": [robust] * 4},
        }
        if method == "frl_rwrm":
            line.update(phi_nat=[0.1 * epoch, 0.0, 0.05, 0.2], eps_mult=[1.0, 1.1, 0.9, 1.2])
        if method == "ham":
            line.update(ham_dropped_fraction=0.1 * epoch, ham_examples=4000.0 + 200 * epoch)
        lines.append(line)
    return lines


def make_record(method: str, seed: int) -> dict[str, Any]:
    """A record shaped like benchmark.runs.run.run_job's, with hand-picked numbers."""
    robust = ROBUST[(method, seed)]
    warm = WARM.get(method)
    warm_s = 30.0 if warm else 0.0
    own = COST[method] + seed * 2.0
    return {
        "method": method, "dataset": DATASET, "preset": PRESET, "seed": seed,
        "protocol": {"model": "small_cnn", "eps": 8 / 255, "epochs": EPOCHS, "val_per_class": 50},
        "hparams": {}, "warm_start": warm, "schema": 1, "model": "small_cnn",
        "run_key": f"{method}{seed}", "classes": CLASSES, "git_commit": "0" * 40, "env": {},
        "eval_files": {},
        "train": {"seconds": own, "passes": 1000 * (3 if method == "trades" else 2),
                  "epochs": EPOCHS - (warm or {}).get("epoch", 0), "best_epoch": EPOCHS,
                  "warm_start_seconds": warm_s, "warm_start_passes": 600 if warm else 0,
                  "seconds_with_warm_start": own + warm_s,
                  "passes_with_warm_start": 1000 * (3 if method == "trades" else 2)
                  + (600 if warm else 0)},
        "eval": {"best": _eval(robust, EPOCHS),
                 "last": _eval([max(a - 0.02, 0.0) for a in robust], EPOCHS)},
        "eval_settings": {"eps": 8 / 255, "test_per_class": 10,
                          "pgd20": {"steps": 20}, "cw": {"steps": 30},
                          "autoattack": {"version": "standard", "per_class": 5,
                                         "description": "AutoAttack standard"}},
        "history": _history(method, seed, (warm or {}).get("epoch", 0)),
    }


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_results(root: Path) -> Path:
    """Finished runs of ROBUST, plus: frl_rwrm/seed1 training (1 of 2 epochs), ham/seed1 never
    started, cfa with seed0 only started (no finished seed at all)."""
    base = root / DATASET / PRESET
    for (method, seed) in ROBUST:
        run = base / method / f"seed{seed}"
        _write(run / "spec.json", {"method": method, "seed": seed, "run_key": f"{method}{seed}",
                                   "protocol": {"epochs": EPOCHS}, "warm_start": WARM.get(method)})
        _write(run / "record.json", make_record(method, seed))
    run = base / "frl_rwrm" / "seed1"
    _write(run / "spec.json", {"protocol": {"epochs": EPOCHS}, "warm_start": WARM["frl_rwrm"]})
    (run / "train.jsonl").write_text(json.dumps({"epoch": 4}) + "\n")
    _write(base / "cfa" / "seed0" / "spec.json", {"protocol": {"epochs": EPOCHS}})
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_results(tmp_path_factory.mktemp("report_results"))


@pytest.fixture(scope="module")
def report(results: Path) -> dict[str, Path]:
    return build_report(results, DATASET, PRESET)


# ---------------------------------------------------------------- collection and aggregation

def test_missing_runs_are_listed_by_name(results: Path) -> None:
    records, missing, expected = find_runs(results, DATASET, PRESET)
    assert len(records) == len(ROBUST)
    assert list(expected) == ["pgd_at", "cfa", "frl_rwrm", "ham", "trades"]
    assert all(seeds == [0, 1] for seeds in expected.values())
    assert [m.describe() for m in missing] == [
        "cfa/seed0 (interrupted, epoch 0/5)", "cfa/seed1 (not started)",
        "frl_rwrm/seed1 (interrupted, epoch 1/2)",
        "ham/seed1 (not started)"]


def test_seed_stats_uses_sample_std() -> None:
    mean, std, n = seed_stats([1.0, 2.0, 3.0, 4.0])
    assert (mean, n) == (2.5, 4)
    assert std == pytest.approx(math.sqrt(5 / 3))          # ddof=1: 5 / (4 - 1)
    mean, std, n = seed_stats([0.3])
    assert mean == 0.3 and math.isnan(std) and n == 1
    assert seed_stats([])[2] == 0


def test_worst_class_is_mean_of_each_seeds_minimum(results: Path) -> None:
    coll = collect(results, DATASET, PRESET)
    summ = summary_frame(coll.metrics, coll.methods).set_index(["checkpoint", "method"])
    trades = summ.loc[("best", "trades")]
    # seed minima 0.28 (cat) and 0.30 (bird); the minimum of the per-class means is 0.32
    assert trades["autoattack_worst"] == pytest.approx(0.29)
    assert trades["autoattack_worst_std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2 / (2 - 1)))
    assert trades["autoattack_avg"] == pytest.approx((0.37 + 0.38) / 2)
    assert trades["autoattack_avg_std"] == pytest.approx(0.01 / math.sqrt(2))
    assert trades["train_seconds"] == pytest.approx(76.0)
    assert trades["seeds"] == 2
    assert math.isnan(summ.loc[("best", "ham"), "autoattack_avg_std"])  # one seed: no std
    assert summ.loc[("best", "cfa"), "seeds"] == 0                        # kept, not dropped
    assert math.isnan(summ.loc[("best", "cfa"), "autoattack_avg"])
    pc = per_class_summary(coll.per_class).set_index(["method", "class"])
    assert pc.loc[("trades", "cat"), "mean"] == pytest.approx(0.32)
    assert pc.loc[("trades", "cat"), "std"] == pytest.approx(0.08 / math.sqrt(2))
    assert pc["mean"].groupby(level="method").min()["trades"] == pytest.approx(0.32)


def test_rho_against_pgd_at(results: Path) -> None:
    assert rho(0.45, 0.3, 0.5, 0.2) == pytest.approx(0.5 - 0.1)
    assert math.isnan(rho(0.45, 0.3, 0.5, 0.0))
    coll = collect(results, DATASET, PRESET)
    summ = summary_frame(coll.metrics, coll.methods).set_index(["checkpoint", "method"])
    a0, w0 = (0.35 + 0.35) / 2, (0.20 + 0.24) / 2
    a, w = (0.37 + 0.38) / 2, (0.28 + 0.30) / 2
    assert summ.loc[("best", "trades"), "rho"] == pytest.approx((w - w0) / w0 + (a - a0) / a0)
    assert summ.loc[("best", "pgd_at"), "rho"] == pytest.approx(0.0)


def test_columns_depend_on_classes_and_baseline() -> None:
    keys = [c.key for c in columns_for(10, has_baseline=False)]
    assert "autoattack_worst10" not in keys and "rho" not in keys
    keys = [c.key for c in columns_for(100, has_baseline=True)]
    assert "autoattack_worst10" in keys and "rho" in keys


def test_worst10_column_with_many_classes(tmp_path: Path) -> None:
    classes = [f"c_{i}" for i in range(20)]
    rec = make_record("pgd_at", 0)
    rec["classes"] = classes
    for ckpt in ("best", "last"):
        for attack in ("clean", "pgd20", "cw", "autoattack"):
            acc = [0.01 * (i + 1) for i in range(20)]
            rec["eval"][ckpt][attack] = summarize(acc, [5] * 20, classes).as_dict()
    _write(tmp_path / DATASET / PRESET / "pgd_at" / "seed0" / "record.json", rec)
    coll = collect(tmp_path, DATASET, PRESET)
    table = build_table(summary_frame(coll.metrics, coll.methods), coll)
    w10 = [c.key for c in table.columns].index("autoattack_worst10")
    assert table.panels[0].cells[0][w10].mean == "1.5"      # mean of the worst 2 of 20 classes


def test_no_records_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"fairbench run --dataset toy --preset unit"):
        build_report(tmp_path, DATASET, PRESET)
    _write(tmp_path / DATASET / PRESET / "pgd_at" / "seed0" / "spec.json", {"protocol": {}})
    with pytest.raises(UserError, match=r"1 unfinished") as err:
        build_report(tmp_path, DATASET, PRESET)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- tables

def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FAIRBENCH_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing {path}; run with FAIRBENCH_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_latex_table_matches_golden(report: dict[str, Path]) -> None:
    _golden("report_table.tex", report["table_tex"].read_text())


def test_markdown_table_matches_golden(report: dict[str, Path]) -> None:
    _golden("report_table.md", report["table_md"].read_text())


def test_latex_content(report: dict[str, Path]) -> None:
    tex = report["table_tex"].read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\cmidrule(lr){3-4}" in tex
    # display names (Method.title) in rows; code names only in the run list, escaped
    assert "FRL-RWRM &" in tex and r"frl\_rwrm/seed1" in tex
    assert "frl_rwrm" not in tex.replace(r"frl\_rwrm", "")
    assert r"(a) Best checkpoint" in tex and r"(b) Last checkpoint" in tex
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption"))
    assert len(caption) < 200 and "std below" in caption       # one sentence
    assert "AutoAttack standard" in tex and "8/255" in tex and "small\\_cnn" in tex  # note
    assert r"Evaluation points per class: 10 (clean, PGD, CW), 5 (AutoAttack)" in tex
    assert r"std with ddof=1" in tex
    # trades has the best AutoAttack worst class (29.0 vs 22.0, 34.0 for one-seed frl_rwrm)
    lines = tex.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("TRADES &"))
    assert "& 29.0 &" in lines[i] and r"{\tiny $\pm$1.4}" in lines[i + 1]  # std below the mean
    frl = next(line for line in lines if line.startswith("FRL-RWRM &"))
    assert "& 34.0 &" in frl and frl.split(" & ")[1] == "1/2"  # 5 points a class: not bold
    assert "{Passes}" not in tex and "{Train time" not in tex  # cost is its own table
    cost = report["cost_tex"].read_text()
    frl_cost = next(line for line in cost.splitlines() if line.startswith("FRL-RWRM &"))
    assert r"\textbf{10.0}" in frl_cost                        # lowest own training time
    assert r"\label{tab:fairbench-toy-unit-cost}" in cost
    cfa = next(line for line in lines if line.startswith("cfa &"))  # not registered: code name
    assert cfa.split(" & ")[1] == "0/2" and "--" in cfa     # never silently blank
    assert r"frl\_rwrm/seed1 (interrupted, epoch 1/2)" in tex
    assert "ham/seed1 (not started)" in tex


def test_markdown_content(report: dict[str, Path]) -> None:
    md = report["table_md"].read_text()
    assert "| FRL-RWRM | 1/2 |" in md and "| 34.0 |" in md and "29.0 ± 1.4" in md
    assert "Missing or unfinished runs (4): cfa/seed0" in md
    assert "ρ vs pgd\\_at" in md


def test_csv_outputs(report: dict[str, Path]) -> None:
    table = pd.read_csv(report["table_csv"])
    row = table[(table["checkpoint"] == "best") & (table["method"] == "trades")].iloc[0]
    assert row["autoattack_worst"] == pytest.approx(29.0)
    assert row["seeds"] == 2 and row["seeds_expected"] == 2
    assert row["autoattack_worst_ci95_lo"] <= 29.0 <= row["autoattack_worst_ci95_hi"]
    assert row["autoattack_worst_ci95_hi"] - row["autoattack_worst_ci95_lo"] > 5  # 5 points a class
    assert set(table["method"]) == {"pgd_at", "trades", "frl_rwrm", "ham", "cfa"}
    pc = pd.read_csv(report["per_class_csv"])
    assert list(pc.columns) == ["run", "method", "seed", "checkpoint", "attack", "class_index",
                                "class", "accuracy", "n", "boundary_error"]
    assert len(pc) == len(ROBUST) * 2 * 4 * len(CLASSES)
    assert pc.loc[pc["attack"] == "clean", "boundary_error"].isna().all()
    aa = pc[(pc["run"] == "pgd_at/seed0") & (pc["attack"] == "autoattack")
            & (pc["checkpoint"] == "best")]
    # one unit (%) in every CSV: records hold fractions
    assert aa["accuracy"].tolist() == pytest.approx([100 * v for v in ROBUST[("pgd_at", 0)]])
    assert aa["n"].tolist() == [5] * 4
    assert aa["boundary_error"].tolist() == pytest.approx([40, 50, 50, 45])
    runs = pd.read_csv(report["runs_csv"])
    best = runs[(runs["run"] == "trades/seed0") & (runs["attack"] == "autoattack")
                & (runs["checkpoint"] == "best")].iloc[0]
    assert best["avg"] == pytest.approx(100 * sum(ROBUST[("trades", 0)]) / 4)


def test_python_api_gives_the_csv_frames_in_percent(results: Path, report) -> None:
    from benchmark import load_results

    res = load_results(results, DATASET, PRESET)
    assert res.classes == CLASSES
    pd.testing.assert_frame_equal(res.per_class.reset_index(drop=True),
                                  pd.read_csv(report["per_class_csv"]), check_dtype=False,
                                  rtol=1e-5)
    aa = res.runs.query("attack == 'autoattack' and checkpoint == 'best'")
    worst = aa.groupby("method")["worst"].mean()
    assert worst["trades"] == pytest.approx(29.0)  # the table's number, same unit
    assert {"epoch", "val_robust_worst"} <= set(res.epochs.columns)
    assert res.epochs["val_robust_worst"].max() <= 100


def test_formats_restrict_tables_but_not_plots(results: Path, tmp_path: Path) -> None:
    written = build_report(results, DATASET, PRESET, out=tmp_path / "r", formats=("md",))
    assert "table_md" in written and "table_tex" not in written and "table_csv" not in written
    assert not (tmp_path / "r" / "table.tex").exists()
    assert (tmp_path / "r" / "per_class_robust.png").exists()
    assert (tmp_path / "r" / "avg_vs_worst.pdf").exists()
    with pytest.raises(UserError, match="unknown report format"):
        build_report(results, DATASET, PRESET, out=tmp_path / "r", formats=("pdf",))


def test_default_output_dir(report: dict[str, Path], results: Path) -> None:
    assert report["table_md"] == results / DATASET / PRESET / "report" / "table.md"
    for key in ("table_tex", "cost_tex", "table_standalone_tex", "table_csv", "per_class_csv",
                "plot_per_class_robust_png", "plot_per_class_robust_pdf",
                "plot_avg_vs_worst_png", "plot_val_curves_pdf", "plot_method_state_png"):
        assert report[key].exists(), key


def test_standalone_compiles_with_pdflatex(report: dict[str, Path], tmp_path: Path) -> None:
    for name in ("table.tex", "cost.tex", "table_standalone.tex"):
        shutil.copy(report["table_tex"].parent / name, tmp_path / name)
    assert r"\documentclass{article}" in (tmp_path / "table_standalone.tex").read_text()
    # a plain one-column article: both tables fit \textwidth (pdflatex reports overfull boxes)
    log = pdflatex_log(tmp_path, "table_standalone.tex")
    assert "Overfull" not in log, log[log.find("Overfull"):][:300]


def test_escaping() -> None:
    assert latex_escape("frl_rwrm 50% & $x#{}") == r"frl\_rwrm 50\% \& \$x\#\{\}"
    assert md_escape("frl_rwrm|a*b") == r"frl\_rwrm\|a\*b"
    assert si(2160) == "2.16k" and si(999) == "999" and si(1.5e9) == "1.5G"


# ---------------------------------------------------------------- figures

def test_per_class_figure(results: Path) -> None:
    coll = collect(results, DATASET, PRESET)
    fig = per_class_figure(coll.per_class, coll.classes, "toy/unit")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert ax.get_ylabel() == "AutoAttack accuracy (%)" and ax.get_xlabel() == "Class"
    assert "per-class AutoAttack accuracy" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["PGD-AT", "FRL-RWRM", "HAM", "TRADES", "worst class"]  # display names
    markers = [line for line in ax.get_lines() if line.get_marker() == "v"]
    # one per method with data, two for trades: bird and cat tie at 32.0 (every tie marked)
    assert len(markers) == 5
    # pgd_at's worst class is cat (index 2): its marker sits over the cat group
    assert 1.5 < markers[0].get_xdata()[0] < 2.5
    assert len(ax.containers) >= 4                             # bars (+ error bars)


def test_tradeoff_figure_and_pareto(results: Path) -> None:
    assert pareto_front([(1, 1), (2, 0.5), (0.5, 2), (0.4, 0.4)]) == [2, 0, 1]
    coll = collect(results, DATASET, PRESET)
    fig = tradeoff_figure(summary_frame(coll.metrics, coll.methods), "toy/unit")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Average AutoAttack accuracy (%)"
    assert ax.get_ylabel() == "Worst-class AutoAttack accuracy (%)"
    assert {t.get_text() for t in ax.texts} == {"PGD-AT", "TRADES", "FRL-RWRM", "HAM"}
    assert ax.get_ylim()[0] >= 0 and ax.get_xlim()[1] <= 100  # accuracy axes in [0, 100]
    assert any(line.get_label() == "Pareto front" for line in ax.get_lines())
    assert fig.axes[1].get_ylabel() == "Train time incl. warm start (s)"   # colour bar


def test_validation_curves_start_warm_runs_at_begin_epoch(results: Path) -> None:
    coll = collect(results, DATASET, PRESET)
    fig = curves_figure(coll.history, "toy/unit")
    avg, worst = fig.axes[:2]
    assert avg.get_xlabel() == "Epoch" and avg.get_ylabel() == "Validation robust accuracy (%)"
    assert "average" in avg.get_title() and "worst class" in worst.get_title()
    frl = next(line for line in avg.get_lines() if line.get_label() == "FRL-RWRM")
    assert list(frl.get_xdata()) == [3, 4, 5]                  # begin epoch from pgd_at's log
    pgd = next(line for line in avg.get_lines() if line.get_label() == "PGD-AT")
    assert list(pgd.get_xdata()) == [1, 2, 3, 4, 5]


def test_validation_curve_bands_are_the_bootstrap_interval(results: Path) -> None:
    coll = collect(results, DATASET, PRESET)
    frl = coll.val_per_class[coll.val_per_class["method"] == "frl_rwrm"]
    assert sorted(frl["epoch"].unique()) == [3, 4, 5]          # the begin epoch from pgd_at
    assert (frl["n"] == coll.records[0].spec.protocol["val_per_class"]).all()
    bands = curve_intervals(coll.val_per_class)
    fig = curves_figure(coll.history, "toy/unit", bands=bands)
    avg = fig.axes[0]
    methods = coll.history["method"].unique()
    assert len(avg.collections) == len(methods)                 # one band per method
    assert "95% bootstrap interval" in fig._suptitle.get_text()
    mine = bands[(bands["method"] == "pgd_at") & (bands["stat"] == "avg")]
    pgd = next(line for line in avg.get_lines() if line.get_label() == "PGD-AT")
    labelled = [line.get_label() for line in avg.get_lines()
                if not line.get_label().startswith("_")]          # one curve per method, in order
    band = avg.collections[labelled.index("PGD-AT")]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(100 * mine["lo"].min())
    assert ys.max() == pytest.approx(100 * mine["hi"].max())
    assert (100 * mine["lo"].to_numpy() <= pgd.get_ydata() + 1e-9).all()


def test_method_state_figure(results: Path) -> None:
    coll = collect(results, DATASET, PRESET)
    fig = state_figure(coll.state, "toy/unit", coll.classes)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in visible]
    # per (method, key) panels; HAM's raw counter ham_examples is left out, its fraction kept
    assert titles == ["FRL-RWRM: eps_mult", "FRL-RWRM: phi_nat", "HAM: ham_dropped_fraction"]
    per_class_lines = visible[0].get_lines()
    assert len(per_class_lines) == 4  # one line per logged element
    assert [line.get_label() for line in per_class_lines] == list(coll.classes)[:4]
    assert len(visible[2].get_lines()) == 1
    assert all(ax.get_xlabel() == "Epoch" for ax in visible)
    assert state_figure(coll.state.iloc[0:0], "toy/unit") is None


# ---------------------------------------------------------------- real records, through the CLI

def test_cli_report_on_real_records(smoke_results: Path, tmp_path: Path, capsys) -> None:
    from benchmark.cli.main import main

    out = tmp_path / "report"
    assert main(["report", "--dataset", "fmnist", "--preset", "smoke", "--results",
                 str(smoke_results), "--out", str(out), "--format", "md,csv"]) == 0
    printed = capsys.readouterr().out
    assert "| PGD-AT |" in printed and "| TRADES |" in printed
    assert (out / "table.csv").exists() and not (out / "table.tex").exists()
    assert (out / "val_curves.png").exists()
    pc = pd.read_csv(out / "per_class.csv")
    assert set(pc["attack"]) == {"clean", "pgd20", "cw", "autoattack"}
    assert len(pc) == 2 * 2 * 4 * 10          # 2 runs x 2 checkpoints x 4 attacks x 10 classes


def test_many_classes_wrap_onto_rows() -> None:
    classes = [f"c{i}" for i in range(60)]
    pc = pd.DataFrame({"method": "pgd_at", "seed": 0, "checkpoint": "best",
                       "attack": "autoattack", "class_index": range(60), "class": classes,
                       "accuracy": [0.3 + 0.001 * i for i in range(60)], "run": "pgd_at/seed0",
                       "n": 5, "boundary_error": 0.1})
    fig = per_class_figure(pc, classes, "many")
    assert len(fig.axes) == 3                                # 25 + 25 + 10 classes
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == classes[50:]
    assert fig.axes[2].get_xlabel() == "Class"
    assert sum(line.get_marker() == "v" for ax in fig.axes for line in ax.get_lines()) == 1


def _with_scored_model(results: Path, tmp_path: Path) -> Path:
    """A copy of `results` plus a model scored by `fairbench eval` (seed 0, no training log)."""
    root = tmp_path / "with_scored"
    shutil.copytree(results, root)
    record = make_record("ham", 0)
    record.update(method="rb-model", hparams={"source": "robustbench"}, history=[],
                  warm_start=None)
    run = root / DATASET / PRESET / "rb-model" / "seed0"
    _write(run / "spec.json", {"method": "rb-model", "seed": 0, "hparams": record["hparams"]})
    _write(run / "record.json", record)
    return root


def test_scored_model_expects_only_its_own_seed(results: Path, tmp_path: Path) -> None:
    records, missing, expected = find_runs(_with_scored_model(results, tmp_path), DATASET,
                                           PRESET)
    assert expected["rb-model"] == [0] and expected["trades"] == [0, 1]
    assert "rb-model" in {r.spec.method for r in records}
    assert not [m for m in missing if m.method == "rb-model"]


def test_every_figure_gets_the_same_method_colours(results: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    from benchmark.report import plots

    seen: dict[str, dict] = {}
    for name in ("per_class_figure", "curves_figure"):
        real = getattr(plots, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen[_name] = kwargs["colors"]
            return _real(*args, **kwargs)

        monkeypatch.setattr(plots, name, spy)
    coll = collect(_with_scored_model(results, tmp_path), DATASET, PRESET)
    plots.write_plots(coll, summary_frame(coll.metrics, coll.methods), tmp_path / "out")
    # rb-model has AutoAttack numbers but no validation curve: colours must not shift
    assert seen["per_class_figure"] == seen["curves_figure"]
    assert set(seen["curves_figure"]) == set(coll.methods) and "rb-model" in coll.methods


def test_unbalanced_test_sets_show_overall_accuracy_beside_the_class_mean(tmp_path: Path):
    rec = make_record("pgd_at", 0)
    n = [30, 10, 20, 40]  # an SVHN-like unbalanced test set
    assert len(n) == len(CLASSES)
    for ckpt in ("best", "last"):
        for attack in ("clean", "pgd20", "cw", "autoattack"):
            acc = rec["eval"][ckpt][attack]["per_class"]
            rec["eval"][ckpt][attack] = summarize(acc, n, CLASSES).as_dict()
    _write(tmp_path / DATASET / PRESET / "pgd_at" / "seed0" / "record.json", rec)
    coll = collect(tmp_path, DATASET, PRESET)
    table = build_table(summary_frame(coll.metrics, coll.methods), coll)
    keys = [c.key for c in table.columns]
    assert keys.index("clean_overall") == keys.index("clean_avg") + 1
    acc = rec["eval"]["best"]["clean"]["per_class"]
    pointwise = 100 * sum(a * k for a, k in zip(acc, n, strict=True)) / sum(n)
    cell = table.panels[0].cells[0][keys.index("clean_overall")]
    assert cell.mean == f"{pointwise:.1f}"
    assert f"{pointwise:.1f}" != table.panels[0].cells[0][keys.index("clean_avg")].mean
    # balanced sets (every other test here) keep the table as it was: no overall columns
    assert "clean_overall" not in [c.key for c in columns_for(len(CLASSES), True)]
