"""The submitit path runs the same run_job code (here through submitit's local executor)."""

import json
from pathlib import Path

from benchmark.common.fileio import read_json
from benchmark.planning.plan import plan
from benchmark.planning.slurm import run_submitit


def test_submitit_local_executor_runs_waves(tmp_path: Path):
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham"], seeds=[0],
                 results=str(tmp_path), show_progress=False)
    assert [[r.job.method for r in w] for w in waves] == [["pgd_at"], ["ham"]]
    failures = run_submitit(waves, tmp_path / ".submitit", cluster="local",
                            parameters={"timeout_min": 10})
    assert failures == []
    rec = read_json(tmp_path / "fmnist/smoke/ham/seed0/record.json")
    assert rec["spec"]["warm_start"]["method"] == "pgd_at"
    assert rec["eval"]["best"]["autoattack"]["n_per_class"] == [2] * 10


def test_submitit_reports_a_failed_job_and_skips_its_dependents(tmp_path: Path):
    raw = tmp_path / "bad" / "FashionMNIST" / "raw"  # corrupt IDX files: the job itself fails
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"not an idx file")
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham"], seeds=[0],
                 results=str(tmp_path), show_progress=False, data_dir=str(tmp_path / "bad"))
    failures = run_submitit(waves, tmp_path / ".submitit", cluster="local",
                            parameters={"timeout_min": 10})
    assert [r.job.method for r, _ in failures] == ["pgd_at", "ham"]
    assert failures[1][1] == "not run: its warm start fmnist/smoke/pgd_at/seed0 failed"
    ham = json.loads((tmp_path / "fmnist/smoke/ham/seed0/failed.json").read_text())
    assert ham["kind"] == "not-run"  # never submitted; recorded as not run
    assert failures[0][1].startswith("fmnist file ") and "is truncated or corrupt" in failures[0][1]
    failed = json.loads((tmp_path / "fmnist/smoke/pgd_at/seed0/failed.json").read_text())
    assert failed["kind"] == "setting" and "truncated or corrupt" in failed["reason"]


def test_last_error_line():
    from benchmark.planning.slurm import _last_error_line

    text = ("Job (task=0) failed\nTraceback (most recent call last):\n  File x\n"
            "benchmark.common.errors.UserError: unknown model 'nope'; available: small_cnn\n"
            "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
            "  - /tmp/log.err\n")
    assert _last_error_line(text) == "unknown model 'nope'; available: small_cnn"


def test_local_crash_is_one_line_and_the_other_runs_go_on(tmp_path: Path, monkeypatch):
    import benchmark.planning.local as launch
    import benchmark.runs.run

    ran: list[str] = []

    def crash_pgd_at(trainer):
        ran.append(trainer.method.name)
        if trainer.method.name == "pgd_at":
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
        raise ValueError("trades crashed too")  # it started, which is all this test needs

    monkeypatch.setattr(benchmark.runs.run.Trainer, "run", crash_pgd_at)
    waves = plan(dataset="fmnist", preset="smoke", methods=["ham", "trades"], seeds=[0],
                 results=str(tmp_path), show_progress=False)
    reported: list[tuple[str, str]] = []
    failures = launch.run_local(waves, on_error=lambda j, e: reported.append((j.job.method, e)))
    assert ran == ["pgd_at", "trades"]                      # ham never starts, trades still runs
    assert [(j.job.method, e) for j, e in failures] == reported  # every failure is printed
    (pgd_method, pgd_error), (_, trades_error), (ham_method, ham_error) = reported
    assert trades_error.startswith("ValueError: trades crashed too")
    log = tmp_path / "fmnist/smoke/pgd_at/seed0/error.txt"
    assert pgd_method == "pgd_at" and "\n" not in pgd_error
    assert pgd_error.startswith("RuntimeError: CUDA out of memory. (traceback in ")
    assert "Tried to allocate 2 GiB" in log.read_text()
    failed = json.loads((tmp_path / "fmnist/smoke/pgd_at/seed0/failed.json").read_text())
    assert failed["kind"] == "crash" and failed["traceback"] == "error.txt"
    assert ham_method == "ham" and "its warm start fmnist/smoke/pgd_at/seed0 failed" in ham_error
