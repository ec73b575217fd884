"""FMNIST from the Debian package: splits, subsets, augmentation, one-line errors."""

import time

import pytest
import torch

from benchmark.common.errors import UserError
from benchmark.core.datasets import DATASETS, augment, load_splits


@pytest.fixture(scope="module")
def splits():
    return load_splits("fmnist", seed=0, val_per_class=30, train_per_class=50, test_per_class=20)


def test_shapes_classes_and_balance(splits):
    assert splits.info.classes[6] == "Shirt" and splits.info.num_classes == 10
    assert splits.train_x.shape == (500, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    for y, k in ((splits.train_y, 50), (splits.val_y, 30), (splits.test_y, 20)):
        assert torch.bincount(y, minlength=10).tolist() == [k] * 10


def test_validation_is_held_out_and_pure_function_of_seed(splits):
    again = load_splits("fmnist", seed=0, val_per_class=30, train_per_class=50)
    other = load_splits("fmnist", seed=1, val_per_class=30, train_per_class=50)
    assert torch.equal(again.val_x, splits.val_x)
    assert not torch.equal(other.val_x, splits.val_x)
    train = {bytes(t.numpy()) for t in splits.train_x}
    assert not any(bytes(v.numpy()) in train for v in splits.val_x)


def test_test_subset_is_seed_independent(splits):
    other = load_splits("fmnist", seed=5, val_per_class=30, train_per_class=50, test_per_class=20)
    assert torch.equal(other.test_x, splits.test_x)


def test_augmentation_crop_and_flip():
    x = torch.rand(64, 1, 28, 28)
    out = augment(x, padding=2, flip=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    same = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert not all(same)
    # no padding, no flip: identity
    assert torch.equal(augment(x, padding=0, flip=False), x)
    # pure flip: every output is the image or its mirror
    flipped = augment(x, padding=0, flip=True, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(2)) for o, i in zip(flipped, x,
                                                                              strict=True))


def test_missing_data_is_one_line_error(tmp_path, monkeypatch):
    import benchmark.core.datasets.fmnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nothing")
    t0 = time.time()
    with pytest.raises(UserError) as err:
        fm.load_fmnist(tmp_path / "empty", download=False)
    msg = str(err.value)
    assert "\n" not in msg and "--download" in msg and str(tmp_path / "empty") in msg
    assert time.time() - t0 < 5


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset 'fminst'.*did you mean 'fmnist'"):
        DATASETS.get("fminst")
