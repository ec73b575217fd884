"""Fault injection on real smoke runs: runs that go wrong say so, damaged files recover, edited
code is never silently reused, and one results directory has one writer per run."""

from __future__ import annotations

import errno
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.cli.main import main
from benchmark.common.fileio import load_state, read_json, read_jsonl
from benchmark.common.settings import setting
from benchmark.core.method import WarmStartMethod, register_method
from benchmark.core.run_paths import RunPaths
from benchmark.planning.plan import plan, record_plan
from benchmark.runs.job import Job
from benchmark.runs.lock import RunLock
from benchmark.runs.provenance import REPO_ROOT, git_state
from benchmark.runs.run import run_job
from benchmark.runs.state import run_state
from methods.pgd_at import PgdAT

SMOKE = ["--dataset", "fmnist", "--preset", "smoke", "--quiet"]


@register_method("_test_nan")
class _NanLoss(PgdAT):
    """Test-only: PGD-AT whose loss turns NaN at one (epoch, batch)."""

    core = False
    nan_epoch: int = setting(1, ge=0)   # 0-based; >= epochs never happens
    nan_batch: int = 1

    def loss(self, model, x, y, ctx):
        loss = super().loss(model, x, y, ctx)
        if (ctx.epoch, ctx.batch) == (self.nan_epoch, self.nan_batch):
            return loss * math.nan
        return loss


@register_method("_test_nan_weights")
class _NanWeights(PgdAT):
    """Test-only: a finite loss whose gradient is NaN on the epoch's last batch, so the update
    makes the weights NaN while the loss itself stays finite."""

    core = False

    def loss(self, model, x, y, ctx):
        x_adv = ctx.attack(model, x, y, loss="ce", start="uniform").x_adv
        out = F.cross_entropy(model(x_adv), y)
        if ctx.epoch == 0 and ctx.batch == 3:  # smoke: 120 images, batch 32 -> batches 0..3
            w = next(model.parameters())
            out = out + torch.sqrt((w - w.detach()).abs().sum())  # value 0, gradient NaN
        return out


def _cli(*argv: str) -> int:
    return main(list(argv))


def _one_error_for(err: str, run: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"error: {run}:")]
    assert len(lines) == 1, err
    return lines[0]


# --- failed runs say so ------------------------------------------------------------------------
def test_nan_loss_fails_that_run_only_and_the_report_names_it(tmp_path: Path, capsys):
    results = str(tmp_path)
    code = _cli("run", *SMOKE, "--methods", "_test_nan,pgd_at", "--results", results)
    out, err = capsys.readouterr()
    assert code == 1
    line = _one_error_for(err, "fmnist/smoke/_test_nan/seed0")
    assert "failed: non-finite loss (nan) at epoch 2, batch 1" in line
    run = RunPaths(tmp_path / "fmnist/smoke/_test_nan/seed0")
    failure = read_json(run.failed)
    assert (failure["kind"], failure["epoch"], failure["batch"]) == ("non-finite", 2, 1)
    assert not run.record.exists()
    assert (tmp_path / "fmnist/smoke/pgd_at/seed0/record.json").exists()  # the other run went on
    # the report lists it by name as failed, never as numbers
    table = (tmp_path / "fmnist/smoke/report/table.md").read_text()
    assert ("Failed runs, no numbers shown (1): \\_test\\_nan/seed0 (failed, non-finite "
            "loss") in table
    rows = [r for r in table.splitlines() if r.startswith("| \\_test\\_nan")]
    assert rows and all(set(r.split("|")[3:-1]) == {" — "} for r in rows)  # no numbers
    assert _cli("status", "--results", results) == 0
    status = capsys.readouterr().out
    assert "_test_nan/seed0  failed       non-finite loss (nan) at epoch 2, batch 1" in status
    # the corrected command is not blocked: the failed run is moved aside and retrained
    code = _cli("run", *SMOKE, "--methods", "_test_nan,pgd_at", "--results", results,
                "--set", "_test_nan.nan_epoch=99", "--no-report")
    err = capsys.readouterr().err
    assert code == 0, err
    assert run.record.exists() and not run.failed.exists()
    assert "the old run had failed" in err
    aside = list((tmp_path / "fmnist/smoke/_test_nan/.superseded").glob("seed0-*/failed.json"))
    assert len(aside) == 1


def test_nan_weights_with_a_finite_loss_fail_the_run(tmp_path: Path, capsys):
    code = _cli("run", *SMOKE, "--methods", "_test_nan_weights", "--results", str(tmp_path),
                "--no-report")
    assert code == 1
    line = _one_error_for(capsys.readouterr().err, "fmnist/smoke/_test_nan_weights/seed0")
    assert "non-finite weights after the epoch's last update at epoch 1, batch 3" in line


def test_a_failing_setting_never_blocks_the_corrected_command(tmp_path: Path, capsys):
    # within its declared range, but more training images per class than FMNIST has
    code = _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(tmp_path),
                "--set", "train_per_class=100000", "--no-report")
    assert code == 1
    line = _one_error_for(capsys.readouterr().err, "fmnist/smoke/pgd_at/seed0")
    assert "fewer than the 100000 per class asked" in line
    assert read_json(tmp_path / "fmnist/smoke/pgd_at/seed0/failed.json")["kind"] == "setting"
    assert _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(tmp_path),
                "--no-report") == 0


# --- out of disk and read-only, injected ------------------------------------------------------
def test_out_of_disk_is_one_line_leaves_no_temp_files_and_resumes(tmp_path: Path, capsys,
                                                                  monkeypatch):
    import benchmark.common.fileio
    import benchmark.runs.failure
    import benchmark.runs.run

    def disk_full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def save_disk_full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")  # what a full disk leaves behind
        disk_full(path)

    # full before any work: the plan file cannot be written -> one line, exit 1
    with monkeypatch.context() as m:
        m.setattr(benchmark.common.fileio, "atomic_write_text", disk_full)
        code = _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(tmp_path))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err[-1].startswith("error: No space left on device: ")
        assert "plan.json" in err[-1] and "Traceback" not in "\n".join(err)
    # full during training, and the crash handler's own writes fail too
    with monkeypatch.context() as m:
        m.setattr(torch, "save", save_disk_full)
        m.setattr(benchmark.runs.run, "atomic_write_json", disk_full)
        m.setattr(benchmark.runs.failure, "atomic_write_text", disk_full)
        m.setattr(benchmark.runs.failure, "atomic_write_json", disk_full)
        code = _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(tmp_path),
                    "--no-report")
        line = _one_error_for(capsys.readouterr().err, "fmnist/smoke/pgd_at/seed0")
    assert code == 1 and "No space left on device" in line and "rerun to resume" in line
    run = tmp_path / "fmnist/smoke/pgd_at/seed0"
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp files
    assert not (run / "error.txt").exists()  # never an empty traceback file
    # space is back: the same command resumes and finishes
    assert _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(tmp_path),
                "--no-report") == 0


# --- damaged files recover ----------------------------------------------------------------------
def _job(results: Path, method: str = "pgd_at") -> Job:
    return Job("fmnist", "smoke", method, 0, results=str(results), show_progress=False)


def test_corrupt_last_checkpoints_fall_back_to_older_intact_ones(tmp_path: Path, capsys):
    job = _job(tmp_path)
    run_job(job.resolve())
    paths = job.paths()
    final = load_state(paths.last)["model"]
    assert paths.prev.exists() and paths.epoch_ckpt(1).exists()  # kept for ham's warm start
    for broken in ([paths.ckpt], [paths.ckpt, paths.prev]):
        for p in (paths.record, paths.done, paths.last):  # as if killed after the last epoch
            p.unlink()
        for p in broken:
            p.write_bytes(p.read_bytes()[:100])
        run_job(job.resolve())
        assert "is damaged" in capsys.readouterr().err
        again = load_state(paths.last)["model"]
        assert all(torch.equal(final[k], again[k]) for k in final)  # same weights, resumed
        assert [r["epoch"] for r in read_jsonl(paths.log)] == [1, 2]


def test_damaged_record_spec_and_log_stay_local(smoke_results: Path, tmp_path: Path, capsys):
    results = tmp_path / "r"
    shutil.copytree(smoke_results, results)
    trades = RunPaths(results / "fmnist/smoke/trades/seed0")
    pgd = RunPaths(results / "fmnist/smoke/pgd_at/seed0")
    trades.record.write_text(trades.record.read_text()[:50])        # truncated record
    assert run_state(trades)[0] == "damaged" and run_state(pgd)[0] == "evaluated"
    assert _cli("status", "--results", str(results)) == 0
    assert "smoke/trades/seed0  damaged" in capsys.readouterr().out
    assert _cli("report", "--dataset", "fmnist", "--preset", "smoke",
                "--results", str(results)) == 0
    out = capsys.readouterr().out
    assert "trades/seed0 (damaged" in out and "| PGD-AT" in out
    # rerunning rebuilds the record from the run's files, without training again
    ckpt_mtime = trades.ckpt.stat().st_mtime_ns
    assert _cli("run", *SMOKE, "--methods", "trades", "--results", str(results),
                "--no-report") == 0
    assert "rebuilding it" in capsys.readouterr().err
    assert read_json(trades.record)["spec"]["method"] == "trades"
    assert trades.ckpt.stat().st_mtime_ns == ckpt_mtime
    # a half-written last line of train.jsonl: dropped with a warning, the run resumes
    for p in (trades.record, trades.done, trades.last):
        p.unlink()
    with open(trades.log, "a") as f:
        f.write('{"epoch": 3, "lr"')
    assert run_state(trades)[0] == "interrupted"
    assert _cli("run", *SMOKE, "--methods", "trades", "--results", str(results),
                "--no-report") == 0
    assert "half-written last line" in capsys.readouterr().err
    assert [r["epoch"] for r in read_jsonl(trades.log)] == [1, 2]
    # a damaged spec.json of a run with progress: that run is refused, status goes on
    pgd.spec.write_text("{")
    assert _cli("run", *SMOKE, "--methods", "pgd_at", "--results", str(results)) == 2
    assert "spec.json is damaged" in capsys.readouterr().err
    assert _cli("status", "--results", str(results)) == 0
    out = capsys.readouterr().out
    assert "pgd_at/seed0  evaluated" in out and "trades/seed0  evaluated" in out


# --- code provenance ----------------------------------------------------------------------------
METHOD_SOURCE = '''
from methods.pgd_at import PgdAT
from benchmark.core.method import register_method


@register_method("_test_edited")
class Edited(PgdAT):
    """Test-only method in a file the test edits."""
    core = False
'''


def test_editing_a_method_file_gives_a_new_run_key_and_retrains(tmp_path: Path, capsys,
                                                              monkeypatch):
    module = tmp_path / "edited_method_mod.py"
    module.write_text(METHOD_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("edited_method_mod")
    results = tmp_path / "r"
    job = _job(results, "_test_edited")
    key = job.resolve().spec.key
    assert any(f.endswith("edited_method_mod.py") for f in job.resolve().spec.code_files)
    assert _cli("run", *SMOKE, "--methods", "_test_edited", "--results", str(results),
                "--no-report") == 0
    module.write_text(METHOD_SOURCE.replace("Test-only", "Edited docstring: test-only")
                      + "# a comment\n")
    assert job.resolve().spec.key == key  # comments and docstrings compute nothing
    module.write_text(METHOD_SOURCE + "SCALE = 2.0  # an edit that could change the numbers\n")
    assert job.resolve().spec.key != key
    capsys.readouterr()
    assert _cli("run", *SMOKE, "--methods", "_test_edited", "--results", str(results),
                "--no-report") == 0
    err = capsys.readouterr().err
    assert "retrained because they ran with other code" in err and "edited_method_mod.py" in err
    assert "reused" not in err
    old = list((results / "fmnist/smoke/_test_edited/.superseded").glob("seed0-*/record.json"))
    assert len(old) == 1 and read_json(old[0])["spec"]["run_key"] == key
    assert read_json(job.paths().record)["spec"]["run_key"] == job.resolve().spec.key


def test_git_dirty_counts_untracked_files_under_methods():
    if git_state()["git_commit"] is None:
        pytest.skip("not a git checkout")
    probe = REPO_ROOT / "methods" / "_untracked_probe.txt"
    try:
        probe.write_text("untracked")
        state = git_state()
        assert state["git_dirty"] is True and "methods/_untracked_probe.txt" in state[
            "git_changed"]
    finally:
        probe.unlink()


def test_the_environment_names_the_cpu_and_the_instructions_torch_uses(monkeypatch):
    """Two CPUs round differently, so the environment says which one trained (docs/reliability)."""
    import torch

    from benchmark.runs import environment as env_mod

    env = env_mod.environment(torch.device("cpu"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu"] == env_mod.cpu_model()
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError("no")))
    monkeypatch.setattr(env_mod.platform, "processor", lambda: "")
    assert env_mod.cpu_model() is None  # neither source knows: None, never an error


# --- status tells the truth, one writer per run -------------------------------------------------
def test_status_lists_planned_and_locked_runs(tmp_path: Path, capsys):
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham"], seeds=[0, 1],
                 results=str(tmp_path), show_progress=False)
    record_plan(waves)
    run = waves[0][0]
    paths = run.paths
    lock = RunLock(paths.root)
    assert lock.acquire() is None
    try:
        from benchmark.runs.claim import claim_spec

        claim_spec(paths, run.spec)
        assert _cli("status", "--results", str(tmp_path)) == 0
        out = capsys.readouterr().out
    finally:
        lock.release()
    assert f"fmnist/smoke/pgd_at/seed0  training     epoch 0/2, {os.uname().nodename}:" in out
    assert "fmnist/smoke/ham/seed1     not started" in out
    assert _cli("status", "--results", str(tmp_path)) == 0
    assert "pgd_at/seed0  interrupted  epoch 0/2; rerun the command to resume" in \
        capsys.readouterr().out


def test_two_launchers_on_one_directory_never_train_a_run_twice(tmp_path: Path):
    cmd = [sys.executable, "-m", "benchmark", "run", *SMOKE, "--methods", "pgd_at,trades",
           "--results", str(tmp_path), "--no-report"]
    env = {**os.environ, "FAIRBENCH_LOCK_HEARTBEAT": "1"}
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    for method in ("pgd_at", "trades"):
        run = RunPaths(tmp_path / f"fmnist/smoke/{method}/seed0")
        assert [r["epoch"] for r in read_jsonl(run.log)] == [1, 2]  # never interleaved
        assert run.record.exists() and not (run.root / "lock.json").exists()
    both = "\n".join(errs)
    assert "held by" in both or "waiting for" in both or "reused" in both, both
    assert json.loads((tmp_path / "fmnist/smoke/plan.json").read_text())["runs"]


# --- found in review ----------------------------------------------------------------------------
BASE_SOURCE = '''
import math

from benchmark.core.method import register_method
from methods.pgd_at import PgdAT

FAIL = False


@register_method("_test_base")
class Base(PgdAT):
    """Test-only base whose loss turns NaN once FAIL is set."""
    core = False

    def loss(self, model, x, y, ctx):
        out = super().loss(model, x, y, ctx)
        return out * math.nan if FAIL else out
'''


@register_method("_test_dep")
class _Dependent(PgdAT, WarmStartMethod):
    """Test-only: warm-starts from _test_base at half the schedule."""

    core = False
    warm_start_base = "_test_base"
    begin_fraction = 0.5


def test_a_dependent_of_a_failed_edited_base_never_shows_stale_numbers(tmp_path, capsys,
                                                                    monkeypatch):
    module = tmp_path / "base_method_mod.py"
    module.write_text(BASE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("base_method_mod")
    results = str(tmp_path / "r")
    assert _cli("run", *SMOKE, "--methods", "_test_dep", "--results", results) == 0
    report = tmp_path / "r/fmnist/smoke/report"
    assert (report / "table.md").exists()
    mod.FAIL = True                                   # the edit makes the base fail ...
    module.write_text(BASE_SOURCE + "EDITED = True\n")  # ... and changes its code digest
    capsys.readouterr()
    assert _cli("run", *SMOKE, "--methods", "_test_dep", "--results", results) == 1
    err = capsys.readouterr().err
    assert "not run: its warm start fmnist/smoke/_test_base/seed0 failed" in err
    dep = RunPaths(tmp_path / "r/fmnist/smoke/_test_dep/seed0")
    assert not dep.record.exists() and read_json(dep.failed)["kind"] == "not-run"
    assert run_state(dep) == ("failed", "not run: its warm start fmnist/smoke/_test_base/seed0 "
                                        "failed")
    assert not report.exists() and "removed the old report" in err  # it showed stale numbers


def test_damaged_shapes_and_model_files(smoke_results: Path, tmp_path: Path, capsys):
    results = tmp_path / "r"
    shutil.copytree(smoke_results, results)
    trades = RunPaths(results / "fmnist/smoke/trades/seed0")
    pgd = RunPaths(results / "fmnist/smoke/pgd_at/seed0")
    record = read_json(trades.record)
    del record["history"][0]["lr"]                    # valid JSON, wrong shape
    trades.record.write_text(json.dumps(record))
    assert run_state(trades)[0] == "damaged" and "EpochLog lacks lr" in run_state(trades)[1]
    assert _cli("report", "--dataset", "fmnist", "--preset", "smoke", "--results",
                str(results)) == 0
    assert "trades/seed0 (damaged" in capsys.readouterr().out
    trades.record.unlink()
    # damaged model_last.pt is rebuilt from ckpt_last.pt (same weights)
    last = load_state(trades.last)["model"]
    trades.last.write_bytes(b"\x00" * 10)
    assert _cli("run", *SMOKE, "--methods", "trades", "--results", str(results),
                "--no-report") == 0
    assert "rebuilt it from ckpt_last.pt" in capsys.readouterr().err
    assert all(torch.equal(last[k], v) for k, v in load_state(trades.last)["model"].items())
    # a spec that is JSON but not an object: that run is damaged, status goes on
    pgd.spec.write_text("[]")
    assert _cli("status", "--results", str(results)) == 0
    out = capsys.readouterr().out
    assert "pgd_at/seed0  evaluated" in out  # its record is intact
    pgd.record.unlink()
    assert run_state(pgd)[0] == "damaged"


def test_fileless_method_code_is_digested():
    from benchmark.runs.provenance import code_digests

    def define(body: str) -> type:
        ns: dict = {"__name__": "fileless_mod_for_test"}
        exec(compile("from methods.pgd_at import PgdAT\n"
                     f"class Fileless(PgdAT):\n    def loss(self, m, x, y, ctx):\n{body}\n",
                     "<notebook cell>", "exec"), ns)
        return ns["Fileless"]

    one, two = define("        return 1"), define("        return 2")
    key = "<no file>/fileless_mod_for_test.Fileless"
    assert code_digests(one)[key] != code_digests(two)[key]


def test_lock_settings_and_submitit_parameters_are_checked_first(tmp_path, capsys,
                                                                 monkeypatch):
    for name, value, text in (("FAIRBENCH_LOCK_STALE", "abc", "is not a number of seconds"),
                              ("FAIRBENCH_LOCK_HEARTBEAT", "900", "must be > 0 and shorter")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            assert _cli("run", *SMOKE, "--methods", "pgd_at", "--results",
                        str(tmp_path / "r")) == 2
            assert text in capsys.readouterr().err
    assert _cli("run", *SMOKE, "--methods", "pgd_at", "--launcher", "submitit-local",
                "--slurm", '{"foo": 1}', "--results", str(tmp_path / "r")) == 2
    assert "--slurm parameters refused by submitit" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
