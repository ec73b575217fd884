"""`fairbench eval`: scoring harness checkpoints, raw state dicts and RobustBench models; refusing
unsafe or unfitting checkpoints with one line."""

from __future__ import annotations

import json
import pickle
import socket
import time
from pathlib import Path

import pytest
import torch

from benchmark.cli.main import main
from benchmark.common.errors import UserError
from benchmark.core.evaluation.loading import fit, state_dict_of
from benchmark.core.models import build_model

SMOKE = ["--dataset", "fmnist", "--preset", "smoke", "--device", "cpu", "--quiet"]


def _eval(*args: str) -> int:
    return main(["eval", *args, *SMOKE])


def _record(results: Path, label: str) -> dict:
    return json.loads((results / "fmnist/smoke" / label / "seed0/record.json").read_text())


@pytest.fixture(scope="module")
def run_dir(smoke_results: Path) -> Path:
    return smoke_results / "fmnist/smoke/pgd_at/seed0"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1
    return err[0]


@pytest.mark.slow
def test_eval_reproduces_the_run(run_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = json.loads((run_dir / "record.json").read_text())
    code = _eval("--checkpoint", str(run_dir / "model_best.pt"), "--model", "small_cnn",
                 "--results", str(tmp_path))
    assert code == 0
    rec = _record(tmp_path, "ckpt-model_best")
    for attack in ("clean", "pgd20", "cw"):
        assert rec["eval"]["best"][attack]["per_class"] == run["eval"]["best"][attack]["per_class"]
    assert rec["eval"]["best"]["clean"]["avg"] == run["eval"]["best"]["clean"]["avg"]
    # the record has run_job's schema; one checkpoint: best and last are the same numbers
    assert set(run) <= set(rec)
    assert rec["spec"]["method"] == "ckpt-model_best" and rec["spec"]["model"] == "small_cnn"
    assert rec["eval"]["last"] == rec["eval"]["best"]
    assert rec["eval_files"]["best"] == rec["eval_files"]["last"]
    assert (tmp_path / "fmnist/smoke/ckpt-model_best/seed0" / rec["eval_files"]["best"]).exists()
    assert all(v is None for v in rec["train"].values()) and rec["history"] == []
    assert rec["eval_settings"] == run["eval_settings"]
    out = capsys.readouterr().out
    assert "Ankle boot" in out and "worst" in out
    # a raw state dict of the same weights scores the same
    raw = tmp_path / "raw.pt"
    torch.save(torch.load(run_dir / "model_best.pt", weights_only=True)["model"], raw)
    assert _eval("--checkpoint", str(raw), "--results", str(tmp_path)) == 0
    assert _record(tmp_path, "ckpt-raw")["eval"]["best"]["clean"] == \
        run["eval"]["best"]["clean"]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_checkpoint_refused(writer: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    obj = {"model": _Payload(marker)}
    if writer == "torch":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    assert _eval("--checkpoint", str(path), "--results", str(tmp_path)) == 2
    assert "refused to load" in _one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "fmnist").exists()


def test_not_a_state_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    assert _eval("--checkpoint", str(path), "--results", str(tmp_path)) == 2
    assert "holds no state dict" in _one_line_error(capsys)
    assert _eval("--checkpoint", str(tmp_path / "nope.pt"), "--results", str(tmp_path)) == 2
    assert "not found" in _one_line_error(capsys)


def test_checkpoint_that_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rgb.pt"
    torch.save(build_model("small_cnn", 10, (3, 28, 28)).state_dict(), path)  # 3 channels
    assert _eval("--checkpoint", str(path), "--model", "small_cnn",
                 "--results", str(tmp_path)) == 2
    line = _one_line_error(capsys)
    assert "does not fit model small_cnn" in line and "shape mismatch" in line


def test_state_dict_forms() -> None:
    model = build_model("small_cnn", 10, (1, 28, 28))
    sd = model.state_dict()
    wrapped = {f"module.{k}": v for k, v in sd.items()}
    for obj in (sd, {"model": sd, "epoch": 3}, {"state_dict": wrapped}):
        assert state_dict_of(obj, Path("x")).keys() == sd.keys()
    missing = dict(list(sd.items())[1:])
    with pytest.raises(UserError, match="1 missing key"):
        fit(model, missing, Path("x"), "small_cnn")
    with pytest.raises(UserError, match="unexpected"):
        fit(model, {**sd, "extra": torch.zeros(1)}, Path("x"), "small_cnn")
    with pytest.raises(UserError, match="holds no state dict"):
        state_dict_of({"model": 1}, Path("x"))


def test_label_collision(run_dir: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "model_best.pt"
    torch.manual_seed(1)
    torch.save(build_model("small_cnn", 10, (1, 28, 28)).state_dict(), other)
    res = str(tmp_path / "res")
    assert _eval("--checkpoint", str(run_dir / "model_best.pt"), "--results", res) == 0
    capsys.readouterr()
    assert _eval("--checkpoint", str(other), "--results", res) == 2
    assert "--label" in _one_line_error(capsys)
    assert _eval("--checkpoint", str(other), "--results", res, "--label", "random init") == 0
    assert _record(Path(res), "random-init")["spec"]["method"] == "random-init"


def test_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--dataset", "fmnist"]) == 2
    assert "exactly one of" in _one_line_error(capsys)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_robustbench_offline_fails_fast(tmp_path: Path, offline: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    code = main(["eval", "--robustbench", "Standard", "--dataset", "cifar10",
                 "--model-dir", str(tmp_path / "models"), "--results", str(tmp_path)])
    assert code == 2 and time.perf_counter() - t0 < 30
    line = _one_line_error(capsys)
    assert "could not load RobustBench model Standard" in line and "--checkpoint" in line
    assert main(["eval", "--robustbench", "NoSuchModel2099", "--dataset", "cifar10",
                 "--model-dir", str(tmp_path / "models")]) == 2
    assert "unknown RobustBench model" in _one_line_error(capsys)
    assert main(["eval", "--robustbench", "Standard", "--dataset", "cifar10",
                 "--threat-model", "L2"]) == 2
    assert "L-inf" in _one_line_error(capsys)
