"""Parallel local workers (`--workers`, `--devices`): the same run keys and numbers as one
worker, a failed run stops nothing else and its dependents are not run, a killed launcher takes
its workers with it and the rerun resumes; bad worker settings are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import benchmark.planning.workers as workers_mod
from benchmark.cli.main import main
from benchmark.planning.workers import worker_devices
from benchmark.runs.lock import RunLock

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["run", "--dataset", "fmnist", "--preset", "smoke", "--seeds", "0", "--quiet",
         "--no-report"]


@pytest.fixture()
def one_thread():
    """One torch thread here and in each worker, so one worker and two compute alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run_dir(results: Path, label: str) -> Path:
    return results / "fmnist" / "smoke" / label / "seed0"


def _same_run(a: Path, b: Path) -> None:
    ra, rb = (json.loads((p / "record.json").read_text()) for p in (a, b))
    assert ra["spec"]["run_key"] == rb["spec"]["run_key"]
    measured = ("seconds", "peak_memory_mb")  # of the machine, not of the run
    assert [{k: v for k, v in ra["eval"][c].items() if k not in measured} for c in ra["eval"]] == \
        [{k: v for k, v in rb["eval"][c].items() if k not in measured} for c in rb["eval"]]
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]
    wa, wb = (torch.load(p / "model_last.pt", map_location="cpu")["model"] for p in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_two_workers_match_one_and_a_failure_stops_nothing_else(tmp_path: Path, one_thread,
                                                                capsys, monkeypatch,
                                                                request) -> None:
    """trades diverges (beta 1e30): its dependent trades_dafa is not run; pgd_at and ham (a
    warm start from pgd_at) finish with the numbers of the sequential launcher. pgd_at is held
    by another launcher (this test) at first: the launcher says so and runs it last, waiting."""
    other = RunLock(_run_dir(tmp_path / "two", "pgd_at"))
    assert other.acquire() is None
    request.addfinalizer(other.release)  # whatever happens (release is idempotent)
    original = workers_mod.run_parallel

    def released_once_heard(*args, on_note=None, **kwargs):
        """The launcher's notes go on to stderr; the first one frees the lock."""
        def note(run, message):
            on_note(run, message)
            other.release()
        return original(*args, on_note=note, **kwargs)

    monkeypatch.setattr(workers_mod, "run_parallel", released_once_heard)
    code = main([*SMOKE, "--methods", "pgd_at,ham,trades,trades_dafa", "--workers", "2",
                 "--results", str(tmp_path / "two"), "--set", "trades.beta=1e30"])
    err = capsys.readouterr().err
    assert code == 1
    assert "pgd_at/seed0: held by" in err and "running the others first" in err
    assert "trades/seed0: failed: non-finite loss" in err
    assert "trades_dafa/seed0: not run: its warm start" in err
    failed = json.loads((_run_dir(tmp_path / "two", "trades_dafa") / "failed.json").read_text())
    assert "not run" in failed["reason"]
    assert main([*SMOKE, "--methods", "pgd_at,ham", "--results", str(tmp_path / "one")]) == 0
    for label in ("pgd_at", "ham"):
        _same_run(_run_dir(tmp_path / "two", label), _run_dir(tmp_path / "one", label))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform != "linux", reason="workers die with the launcher on Linux")
def test_a_killed_launcher_takes_its_workers_and_the_rerun_resumes(tmp_path: Path) -> None:
    results = tmp_path / "r"
    args = [*SMOKE, "--methods", "pgd_at", "--workers", "2", "--set", "epochs=15",
            "--results", str(results)]
    launcher = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = _run_dir(results, "pgd_at") / "lock.json"
    log = _run_dir(results, "pgd_at") / "train.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().count("\n") >= 1 and lock.exists()):
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.05)
    worker = json.loads(lock.read_text())["pid"]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 30
    while _alive(worker):
        assert time.monotonic() < deadline, "a worker outlived its launcher"
        time.sleep(0.1)
    assert not (_run_dir(results, "pgd_at") / "record.json").exists()
    assert main(args) == 0  # resumes from the last checkpoint
    assert json.loads((_run_dir(results, "pgd_at") / "record.json").read_text())["train"][
        "epochs"] == 15


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--devices", "all"], "--devices all found no CUDA device"),
    (["--devices", "cuda:7"], "is not available here"),
    (["--device", "cpu", "--devices", "cpu"], "--device and --devices both given"),
    (["--launcher", "submitit-local", "--workers", "2"], "are for the local launcher"),
])
def test_bad_worker_settings_are_one_line(args, message, tmp_path: Path, capsys) -> None:
    if "all" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA devices")
    code = main([*SMOKE, "--methods", "pgd_at", "--results", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()


def test_workers_share_devices_in_turn():
    assert worker_devices(["cuda:0", "cuda:1"], 4) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert worker_devices([], 2) == [None, None]
