"""End to end through the CLI on real FMNIST (smoke preset): run, status, idempotence, resume,
warm starts, one-line errors."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import benchmark.core.trainer as train_mod
from benchmark.catalog import method_registry
from benchmark.cli.main import main
from benchmark.common.fileio import load_state, read_json, read_jsonl
from benchmark.core.method import WarmStartMethod, register_method
from benchmark.planning.local import run_local
from benchmark.planning.plan import plan
from benchmark.runs.job import Job
from benchmark.runs.run import run_job
from methods.pgd_at import PgdAT

SMOKE = ["--dataset", "fmnist", "--preset", "smoke", "--quiet"]


@register_method("_test_warm_a")
class _WarmA(PgdAT, WarmStartMethod):
    """Test-only: PGD-AT warm-started from pgd_at at half the schedule."""

    core = False
    warm_start_base = "pgd_at"
    begin_fraction = 0.5


@register_method("_test_warm_b")
class _WarmB(_WarmA):
    """Test-only: a second method with the same base."""


def test_record_schema(smoke_results: Path):
    rec = read_json(smoke_results / "fmnist/smoke/pgd_at/seed0/record.json")
    for key in ("spec", "classes", "env", "train", "eval", "eval_files", "eval_settings",
                "history", "schema"):
        assert key in rec
    for key in ("method", "dataset", "preset", "seed", "model", "hparams", "run_key", "protocol",
                "code", "end_epoch"):
        assert key in rec["spec"]
    assert "git_commit" in rec["env"] and rec["spec"]["code"].keys() == {"harness", "method"}
    assert rec["classes"][6] == "Shirt"
    assert rec["train"]["epochs"] == 2 and rec["train"]["passes"] > 0
    for ckpt in ("best", "last"):
        for attack in ("clean", "pgd20", "cw", "autoattack"):
            s = rec["eval"][ckpt][attack]
            assert len(s["per_class"]) == 10 and s["worst"] == min(s["per_class"])
            assert s["avg"] == pytest.approx(sum(s["per_class"]) / 10)
    n_aa = rec["eval"]["best"]["autoattack"]["n_per_class"]
    assert n_aa == [2] * 10 and rec["eval"]["best"]["clean"]["n_per_class"] == [4] * 10
    assert "APGD" in rec["eval_settings"]["autoattack"]["description"].upper() or \
        "apgd" in rec["eval_settings"]["autoattack"]["description"]
    # passes: 2 epochs x 120 images x (2 steps x 2 passes + forward + backward of the update)
    assert rec["train"]["passes"] == 2 * 120 * (2 * 2 + 2)


def test_rerun_does_nothing_and_status(smoke_results: Path, capsys):
    record = smoke_results / "fmnist/smoke/pgd_at/seed0/record.json"
    before = record.stat().st_mtime_ns
    assert main(["run", *SMOKE, "--methods", "pgd_at", "--results", str(smoke_results),
                 "--no-report"]) == 0
    assert record.stat().st_mtime_ns == before
    assert "1 already finished there: reused, not retrained" in capsys.readouterr().err
    assert main(["status", "--results", str(smoke_results)]) == 0
    out = capsys.readouterr().out
    assert "fmnist/smoke/pgd_at/seed0" in out and "evaluated" in out


def test_bad_names_give_one_line_errors(tmp_path: Path, capsys):
    cases = [
        (["run", *SMOKE, "--methods", "tradez"], "unknown method 'tradez'"),
        (["run", "--dataset", "fminst", "--methods", "pgd_at"], "unknown dataset 'fminst'"),
        (["run", *SMOKE, "--methods", "pgd_at", "--set", "epoch=3"], "unknown protocol field"),
        (["run", *SMOKE, "--methods", "trades", "--set", "trades.bet=1"], "no hyperparameter"),
        (["run", *SMOKE, "--methods", "pgd_at", "--seeds", "a"], "seeds must be integers"),
        (["run", *SMOKE, "--methods", "pgd_at", "--set", "aa_version=foo"],
         "aa_version='foo' must be one of"),
        (["run", *SMOKE, "--methods", "pgd_at", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", *SMOKE, "--methods", "pgd_at", "--device", "cuda:999"], "not available here"),
    ]
    for argv, expected in cases:
        assert main([*argv, "--results", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err


def test_resume_after_interruption_is_exact(tmp_path: Path, monkeypatch):
    job = Job("fmnist", "smoke", "trades", 0, results=str(tmp_path / "a"), show_progress=False,
              overrides={"epochs": 3})
    reference = run_job(job.resolve())
    original = train_mod.Trainer._train_epoch
    calls = {"n": 0}

    def dies_in_second_epoch(self, epoch, *args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    killed = Job("fmnist", "smoke", "trades", 0, results=str(tmp_path / "b"),
                 show_progress=False, overrides={"epochs": 3})
    monkeypatch.setattr(train_mod.Trainer, "_train_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_job(killed.resolve())
    paths = killed.paths()
    assert load_state(paths.ckpt)["state"]["epoch"] == 1 and not paths.record.exists()
    monkeypatch.setattr(train_mod.Trainer, "_train_epoch", original)
    resumed = run_job(killed.resolve())
    assert [r["epoch"] for r in read_jsonl(paths.log)] == [1, 2, 3]
    a = load_state(job.paths().last)["model"]
    b = load_state(paths.last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical to the uninterrupted run
    assert resumed["eval"]["last"]["pgd20"]["per_class"] == \
        reference["eval"]["last"]["pgd20"]["per_class"]


def test_warm_start_shares_the_base_and_counts_its_cost(tmp_path: Path):
    waves = plan(dataset="fmnist", preset="smoke", methods=["_test_warm_a", "_test_warm_b"],
                 seeds=[0], results=str(tmp_path), show_progress=False)
    assert [[r.job.method for r in w] for w in waves] == [["pgd_at"], ["_test_warm_a",
                                                                    "_test_warm_b"]]
    assert waves[0][0].job.keep_epochs == (1,)
    assert run_local(waves) == []
    base = tmp_path / "fmnist/smoke/pgd_at/seed0"
    assert [r["epoch"] for r in read_jsonl(base / "train.jsonl")] == [1, 2]  # trained once
    assert (base / "ckpt_epoch1.pt").exists()
    base_first_epoch = read_jsonl(base / "train.jsonl")[0]
    for name in ("_test_warm_a", "_test_warm_b"):
        rec = read_json(tmp_path / f"fmnist/smoke/{name}/seed0/record.json")
        warm = rec["spec"]["warm_start"]
        assert warm["method"] == "pgd_at" and warm["epoch"] == 1
        assert [h["epoch"] for h in rec["history"]] == [2]
        t = rec["train"]
        assert t["epochs"] == 1 and t["warm_start_passes"] == base_first_epoch["passes"]
        assert t["passes_with_warm_start"] == t["passes"] + t["warm_start_passes"]
    base_mtime = (base / "record.json").stat().st_mtime_ns
    assert run_local(plan(dataset="fmnist", preset="smoke", methods=["_test_warm_b"],
                          seeds=[0], results=str(tmp_path), show_progress=False)) == []
    assert (base / "record.json").stat().st_mtime_ns == base_mtime


def test_killed_warm_started_run_resumes(tmp_path: Path, monkeypatch):
    common = dict(dataset="fmnist", preset="smoke", methods=["_test_warm_a"], seeds=[0],
                  show_progress=False, overrides={"epochs": 4})
    assert run_local(plan(results=str(tmp_path / "ref"), **common)) == []
    original = train_mod.Trainer._train_epoch

    def dies_in_epoch_4(self, epoch, *args):
        if self.method.name == "_test_warm_a" and epoch == 3:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(train_mod.Trainer, "_train_epoch", dies_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        run_local(plan(results=str(tmp_path / "run"), **common))
    monkeypatch.setattr(train_mod.Trainer, "_train_epoch", original)
    assert run_local(plan(results=str(tmp_path / "run"), **common)) == []
    log = read_jsonl(tmp_path / "run/fmnist/smoke/_test_warm_a/seed0/train.jsonl")
    assert [r["epoch"] for r in log] == [3, 4]
    ref = load_state(tmp_path / "ref/fmnist/smoke/_test_warm_a/seed0/model_last.pt")["model"]
    got = load_state(tmp_path / "run/fmnist/smoke/_test_warm_a/seed0/model_last.pt")["model"]
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_changed_settings_do_not_overwrite_a_run(smoke_results: Path, capsys):
    run = smoke_results / "fmnist/smoke/pgd_at/seed0"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    code = main(["run", *SMOKE, "--methods", "pgd_at", "--set", "lr=0.5", "--no-report",
                 "--results", str(smoke_results)])
    assert code == 2  # refused before any work
    err = capsys.readouterr().err
    assert "holds a run with other settings" in err and len(err.strip().splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_new_method_template_registers(tmp_path: Path):
    from benchmark.cli.new_method import write_template

    path = write_template("my_method", tmp_path)
    source = path.read_text()
    assert '@register_method("my_method")' in source and "def loss" in source
    compile(source, str(path), "exec")
    assert json.dumps(source)  # plain text file


def test_records_carry_memory_and_evaluation_cost(smoke_results: Path):
    from benchmark.runs.record import eval_cost
    from benchmark.runs.schema import CheckpointEval

    rec = read_json(smoke_results / "fmnist/smoke/pgd_at/seed0/record.json")
    assert rec["train"]["peak_memory_mb"] > 0 and rec["eval_cost"]["peak_memory_mb"] > 0
    assert all(line["val_seconds"] > 0 for line in rec["history"])
    seconds = {"clean": 1.0, "pgd20": 2.0}
    twins = {ckpt: CheckpointEval({}, None, seconds, {"cw": 5.0}) for ckpt in ("best", "last")}
    cost = eval_cost(twins, {"best": "eval/best-abc.json", "last": "eval/last-abc.json"})
    assert cost == {"seconds": 3.0, "peak_memory_mb": 5.0}  # twins counted once


def test_new_method_test_template_passes_against_the_method_template(tmp_path: Path,
                                                                      monkeypatch):
    import importlib

    from benchmark.cli.new_method import write_template, write_test_template

    (tmp_path / "m").mkdir()
    (tmp_path / "t").mkdir()
    method_file = write_template("tmpl_probe_method", tmp_path / "m")
    test_file = write_test_template("tmpl_probe_method", tmp_path / "t")
    assert test_file is not None and write_test_template("tmpl_probe_method",
                                                         tmp_path / "t") is None
    monkeypatch.syspath_prepend(str(method_file.parent))
    monkeypatch.syspath_prepend(str(test_file.parent))
    registry = method_registry()  # the probe leaves it when the test ends (other tests list it)
    monkeypatch.setattr(registry, "_items", dict(registry._items))
    try:
        importlib.import_module("tmpl_probe_method")               # registers the method
        importlib.import_module("test_tmpl_probe_method").test_loss_matches_a_hand_computation()
    finally:
        for module in ("tmpl_probe_method", "test_tmpl_probe_method"):
            sys.modules.pop(module, None)


def test_a_run_evaluated_later_keeps_where_it_was_trained(tmp_path: Path):
    """A search-style run (trained, not evaluated), evaluated by a later launch at another
    commit: env.json still names the training's commit, and the record holds both."""
    job = Job("fmnist", "smoke", "pgd_at", 0, results=str(tmp_path), show_progress=False,
              evaluate=False)
    assert run_job(job.resolve()) is None
    env_file = tmp_path / "fmnist/smoke/pgd_at/seed0/env.json"
    trained = {**json.loads(env_file.read_text()), "git_commit": "0" * 40}  # an older commit
    env_file.write_text(json.dumps(trained))
    record = run_job(replace(job, evaluate=True).resolve())
    assert json.loads(env_file.read_text()) == trained  # evaluating rewrites nothing of it
    assert record["env"]["training"] == trained and record["env"]["git_commit"] != "0" * 40
