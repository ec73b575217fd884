"""CIFAR-10/100, SVHN and Imagenette loaders on tiny files in the real on-disk formats; their
presets; missing data offline; an end-to-end smoke run on fake CIFAR-10."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch
from fake_datasets import (
    dump_pickle,
    write_cifar10,
    write_cifar100,
    write_imagenette,
    write_svhn,
)

from benchmark.catalog import get_protocol, make_method
from benchmark.cli.main import main
from benchmark.common.errors import UserError
from benchmark.core.datasets import DATASETS, TensorLoader, load_splits
from benchmark.core.datasets.cifar import CIFAR10_CLASSES
from benchmark.core.datasets.imagenette import CLASSES as IMAGENETTE_CLASSES
from benchmark.core.datasets.imagenette import WNIDS, imagenette_info

NEW = ("cifar10", "cifar100", "svhn", "imagenette")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network at all: name lookups and connections fail at once."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# --- loaders ---------------------------------------------------------------------------------
def test_cifar10_format(tmp_path: Path) -> None:
    info = DATASETS.get("cifar10")
    train_x, train_y, test_x, test_y = info.load(write_cifar10(tmp_path), False)
    assert train_x.shape == (100, 3, 32, 32) and train_x.dtype == torch.uint8
    assert test_x.shape == (30, 3, 32, 32)
    assert torch.equal(train_y, torch.arange(10).repeat(10))
    assert torch.equal(train_x[:, 0, 5, 7], (20 * train_y).to(torch.uint8))  # channel order
    assert torch.equal(train_x[3, 1], (torch.arange(1024) % 256).reshape(32, 32).byte())  # HW
    assert torch.equal(train_x[:, 2, 0, 0], torch.arange(100).byte())  # batch order kept
    assert info.classes == CIFAR10_CLASSES and info.classes[3] == "cat"
    assert (info.shape, info.crop_padding, info.flip) == ((3, 32, 32), 4, True)


def test_cifar100_format(tmp_path: Path) -> None:
    info = DATASETS.get("cifar100")
    train_x, train_y, test_x, test_y = info.load(write_cifar100(tmp_path), False)
    assert train_x.shape == (300, 3, 32, 32) and test_x.shape == (200, 3, 32, 32)
    assert torch.equal(train_y, torch.arange(100).repeat(3))
    assert info.num_classes == 100 and len(set(info.classes)) == 100
    assert info.classes == tuple(sorted(info.classes))  # the official (alphabetical) order
    assert (info.classes[0], info.classes[-1]) == ("apple", "worm")


def test_cifar_meta_must_match(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    dump_pickle({"label_names": ["a"] * 10}, tmp_path / "cifar-10-batches-py" / "batches.meta")
    with pytest.raises(UserError, match="official cifar10 classes"):
        DATASETS.get("cifar10").load(tmp_path, False)


class _Doctored:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_cifar_pickle_runs_no_code(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    dump_pickle({"labels": [0], "data": _Doctored(marker)},
          tmp_path / "cifar-10-batches-py" / "data_batch_2")
    with pytest.raises(UserError, match="cannot read .*data_batch_2") as err:
        DATASETS.get("cifar10").load(tmp_path, False)
    assert not marker.exists() and "\n" not in str(err.value)


def test_svhn_format(tmp_path: Path) -> None:
    info = DATASETS.get("svhn")
    train_x, train_y, test_x, test_y = info.load(write_svhn(tmp_path), False)
    assert train_x.shape == (60, 3, 32, 32) and test_x.shape == (30, 3, 32, 32)
    assert torch.equal(train_y, torch.arange(60) % 10)  # label 10 -> digit 0
    assert torch.equal(train_x[:, 0, 4, 9], (20 * train_y).byte())
    assert torch.equal(train_x[0, 1, 3], (torch.arange(32) * 8).byte())  # width axis
    assert info.classes == tuple("0123456789")
    assert (info.crop_padding, info.flip) == (4, False)


def _decreasing_rows(x: torch.Tensor) -> int:
    """Images whose (left-to-right increasing) green ramp now decreases: they were flipped."""
    row = x[:, 1, 16, 6:26]
    return int(((row[:, 1:] - row[:, :-1]) < 0).any(1).sum())


def test_svhn_never_flips_cifar_does(tmp_path: Path) -> None:
    splits = load_splits("svhn", seed=0, val_per_class=1, data_dir=write_svhn(tmp_path / "s"))
    x = splits.train_x.repeat(4, 1, 1, 1)
    y = torch.zeros(len(x), dtype=torch.long)
    for name in ("svhn", "cifar10"):
        info = DATASETS.get(name)
        loader = TensorLoader(x, y, 64, device=torch.device("cpu"), shuffle=True,
                              augment_with=(info.crop_padding, info.flip))
        flipped = sum(_decreasing_rows(xb) for xb, _ in loader)
        assert (flipped == 0) if name == "svhn" else (flipped > 0), name


def test_imagenette_folder(tmp_path: Path) -> None:
    info = DATASETS.get("imagenette")
    root = write_imagenette(tmp_path)
    train_x, train_y, test_x, test_y = info.load(root, False)
    assert train_x.shape == (50, 3, 32, 32) and test_x.shape == (20, 3, 32, 32)
    assert torch.equal(train_y, torch.arange(10).repeat_interleave(5))
    red = train_x[:, 0].float().mean((1, 2))
    assert torch.allclose(red, 25 * train_y.float(), atol=4)  # image i belongs to its folder
    assert info.classes == IMAGENETTE_CLASSES and info.classes[1] == "English springer"
    assert (info.shape, info.flip) == ((3, 32, 32), True)
    # a cache is written and reused; a changed folder rebuilds it
    cache = root / "imagenette2-160" / ".fairbench-32px.npz"
    assert cache.exists()
    again = info.load(root, False)
    expected = (train_x, train_y, test_x, test_y)
    assert all(torch.equal(a, b) for a, b in zip(again, expected, strict=True))
    extra = root / "imagenette2-160" / "val" / WNIDS[0] / "extra.JPEG"
    (root / "imagenette2-160" / "val" / WNIDS[0] / f"{WNIDS[0]}_0.JPEG").rename(extra)
    (root / "imagenette2-160" / "val" / WNIDS[1] / f"{WNIDS[1]}_0.JPEG").unlink()
    assert info.load(root, False)[2].shape == (19, 3, 32, 32)


def test_imagenette_other_resolution(tmp_path: Path) -> None:
    info = imagenette_info(16, name="imagenette16")
    train_x, *_ = info.load(write_imagenette(tmp_path, n_train=2, n_val=1), False)
    assert info.shape == (3, 16, 16) and train_x.shape == (20, 3, 16, 16)


def test_imagenette_wrong_folders(tmp_path: Path) -> None:
    root = write_imagenette(tmp_path, n_train=1, n_val=1)
    (root / "imagenette2-160" / "train" / WNIDS[0]).rename(
        root / "imagenette2-160" / "train" / "n99999999")
    with pytest.raises(UserError, match="not an Imagenette split"):
        DATASETS.get("imagenette").load(root, False)


def test_balanced_validation_split(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path)
    s = load_splits("cifar10", seed=3, val_per_class=3, train_per_class=5, test_per_class=2,
                    data_dir=root)
    assert torch.bincount(s.val_y, minlength=10).tolist() == [3] * 10
    assert torch.bincount(s.train_y, minlength=10).tolist() == [5] * 10
    assert torch.bincount(s.test_y, minlength=10).tolist() == [2] * 10
    ids = lambda x: set(x[:, 2, 0, 0].tolist())  # image index written in the blue plane
    assert not ids(s.val_x) & ids(s.train_x)
    same = load_splits("cifar10", seed=3, val_per_class=3, data_dir=root)
    other = load_splits("cifar10", seed=4, val_per_class=3, data_dir=root)
    assert torch.equal(same.val_x, s.val_x) and not torch.equal(other.val_x, s.val_x)
    sv = load_splits("svhn", seed=0, val_per_class=2, data_dir=write_svhn(tmp_path / "svhn"))
    assert torch.bincount(sv.val_y, minlength=10).tolist() == [2] * 10
    im = load_splits("imagenette", seed=0, val_per_class=2,
                     data_dir=write_imagenette(tmp_path / "im"))
    assert torch.bincount(im.val_y, minlength=10).tolist() == [2] * 10
    assert torch.bincount(im.train_y, minlength=10).tolist() == [3] * 10


# --- missing data ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_missing_data_offline(name: str, tmp_path: Path, offline: None) -> None:
    t0 = time.perf_counter()
    with pytest.raises(UserError) as err:
        DATASETS.get(name).load(tmp_path, False)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "--download" in msg
    with pytest.raises(UserError) as err:  # --download without a network: fails fast too
        DATASETS.get(name).load(tmp_path / "dl", True)
    assert "could not download" in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - t0 < 10


def test_make_bench_without_data(tmp_path: Path, offline: None,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`make bench DATASET=cifar10` on an empty data dir: a one-line error within seconds."""
    t0 = time.perf_counter()
    code = main(["run", "--dataset", "cifar10", "--preset", "quick", "--no-report", "--quiet",
                 "--data-dir", str(tmp_path / "data"), "--results", str(tmp_path / "res")])
    assert time.perf_counter() - t0 < 20
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "data not found" in ln]
    assert lines and all("--download" in ln and str(tmp_path / "data") in ln for ln in lines)
    assert code != 0


def test_make_bench_without_data_exit_code(tmp_path: Path, offline: None, capsys) -> None:
    assert main(["run", "--dataset", "cifar10", "--preset", "quick", "--quiet",
                 "--methods", "core", "--data-dir", str(tmp_path / "data"),
                 "--results", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--download" in err and "cifar-10-batches-py" in err
    assert not (tmp_path / "res").exists()  # stopped before creating any run


def test_make_bench_opts_into_the_download_for_downloadable_datasets() -> None:
    root = Path(__file__).resolve().parents[1]

    def dry_run(dataset: str) -> str:
        out = subprocess.run(["make", "-n", "-W", "pyproject.toml", "bench",
                              f"DATASET={dataset}"], cwd=root, capture_output=True, text=True,
                             timeout=60)
        return next(line for line in out.stdout.splitlines() if "fairbench run" in line) + \
            out.stdout.split("fairbench run", 1)[1].split("\n\n")[0]

    assert "--download" in dry_run("cifar10") and "--dataset cifar10" in dry_run("cifar10")
    assert "--download" not in dry_run("fmnist")  # the Debian package or --data-dir


def test_download_offline_is_one_line_and_fast(tmp_path: Path, offline: None, capsys) -> None:
    t0 = time.perf_counter()
    code = main(["run", "--dataset", "cifar10", "--preset", "quick", "--quiet", "--download",
                 "--methods", "pgd_at", "--data-dir", str(tmp_path / "data"),
                 "--results", str(tmp_path / "res"), "--no-report"])
    assert time.perf_counter() - t0 < 30 and code != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "could not download" in ln]
    assert err and all("Traceback" not in ln for ln in err)


# --- presets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_full_preset_is_the_literature(name: str) -> None:
    p = get_protocol(name, "full")
    assert (p.model, p.batch_size, p.momentum, p.weight_decay, p.epochs) == \
        ("preact_resnet18", 128, 0.9, 5e-4, 120)
    assert p.lr == (0.01 if name == "svhn" else 0.1) and p.finetune_lr == 0.001
    assert p.lr_milestones == ((60, 0.1), (90, 0.01), (110, 0.005))
    assert (p.eps, p.alpha, p.train_steps) == (8 / 255, 2 / 255, 10)
    assert p.aa_version == "standard" and p.test_per_class is None and p.aa_per_class is None
    assert p.val_per_class == {"cifar100": 30, "imagenette": 50}.get(name, 300)


@pytest.mark.parametrize("name", NEW)
def test_quick_preset_same_shape(name: str) -> None:
    full, quick = get_protocol(name, "full"), get_protocol(name, "quick")
    assert quick.model == full.model and quick.lr == full.lr and quick.eps == full.eps
    assert [f for _, f in quick.lr_milestones] == [f for _, f in full.lr_milestones]
    for (qe, _), (fe, _) in zip(quick.lr_milestones, full.lr_milestones, strict=True):
        assert abs(qe / quick.epochs - fe / full.epochs) <= 1 / quick.epochs
    assert quick.aa_version == "custom" and quick.aa_per_class <= quick.test_per_class
    assert get_protocol(name, "smoke").epochs <= 2


def test_svhn_ham_drop_step_is_data() -> None:
    for preset in ("full", "quick"):
        assert make_method("ham", get_protocol("svhn", preset)).drop_step == 5
    # smoke attacks take 2 steps; drop_step <= train_steps is validated
    assert make_method("ham", get_protocol("svhn", "smoke")).drop_step == 1
    assert make_method("ham", get_protocol("cifar10", "full")).drop_step != 5


# --- end to end ------------------------------------------------------------------------------
@pytest.mark.slow
def test_cifar10_smoke_run(tmp_path: Path) -> None:
    data = write_cifar10(tmp_path / "data")
    results = tmp_path / "results"
    code = main(["run", "--dataset", "cifar10", "--preset", "smoke", "--methods", "pgd_at",
                 "--data-dir", str(data), "--results", str(results), "--quiet", "--no-report",
                 "--device", "cpu"])
    assert code == 0
    import json

    record = json.loads((results / "cifar10/smoke/pgd_at/seed0/record.json").read_text())
    assert record["classes"] == list(CIFAR10_CLASSES)
    assert record["eval"]["best"]["clean"]["n_per_class"] == [2] * 10
