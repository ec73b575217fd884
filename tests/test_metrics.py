"""Per-class metric math against hand-made cases."""

import math

import pytest
import torch

from benchmark.core.metrics import evaluate_predictions, per_class_accuracy, summarize

CLASSES = ("a", "b", "c")


def test_per_class_accuracy_with_a_class_never_right():
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 0, 0, 1, 1])  # class c never right
    acc, n = per_class_accuracy(pred == y, y, 3)
    assert acc == [0.5, 2 / 3, 0.0] and n == [2, 3, 4]
    s = summarize(acc, n, CLASSES)
    assert s.avg == pytest.approx((0.5 + 2 / 3 + 0) / 3)  # mean of per-class, not pooled
    assert s.worst == 0.0 and s.worst_class == "c"
    mean = s.avg
    assert s.std == pytest.approx(math.sqrt(((0.5 - mean) ** 2 + (2 / 3 - mean) ** 2
                                                + mean ** 2) / 3))
    assert s.worst10 == 0.0


def test_boundary_error():
    y = torch.tensor([0, 0, 1, 1])
    clean = torch.tensor([0, 0, 1, 0])
    adv = torch.tensor([1, 0, 0, 0])
    out = evaluate_predictions(adv, y, ("a", "b"), clean_pred=clean)
    # class a: 2 clean-correct, 1 flipped -> 1/2; class b: 1 clean-correct flipped -> 1/2
    assert out.boundary_error == [0.5, 0.5]
    assert out.per_class == [0.5, 0.0]


def test_empty_class_is_nan_and_ignored():
    y = torch.tensor([0, 0])
    acc, n = per_class_accuracy(torch.tensor([True, False]), y, 2)
    assert acc[0] == 0.5 and math.isnan(acc[1]) and n == [2, 0]
    s = summarize(acc, n, ("a", "b"))
    assert s.avg == 0.5 and s.worst_class == "a"
