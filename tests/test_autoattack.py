"""Per-class AutoAttack accuracy from its adversarial labels equals AutoAttack's own aggregate."""

import torch

from benchmark.catalog import get_protocol
from benchmark.core.datasets import load_splits, to_float
from benchmark.core.evaluation.autoattack import autoattack_labels
from benchmark.core.metrics import evaluate_predictions
from benchmark.core.models import build_model


def _clean_trained_model() -> torch.nn.Module:
    torch.manual_seed(0)
    data = load_splits("fmnist", seed=0, val_per_class=1, train_per_class=100)
    model = build_model("small_cnn", 10, (1, 28, 28))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = to_float(data.train_x), data.train_y
    for _ in range(3):
        for i in range(0, len(y), 50):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 50]), y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_per_class_aggregation_matches_autoattack_own_aggregate(tmp_path):
    protocol = get_protocol("fmnist", "smoke", {"aa_iters": "10"})
    splits = load_splits("fmnist", seed=0, val_per_class=1, test_per_class=6)
    model = _clean_trained_model()  # right on many points, attackable on most of them
    x, y = splits.test_x, splits.test_y
    y_adv, own = autoattack_labels(model, x, y, protocol, torch.device("cpu"),
                                   partial=tmp_path / "aa.json")
    summary = evaluate_predictions(y_adv, y, splits.info.classes)
    pooled = float((y_adv == y).double().mean())
    clean = float((model(to_float(x)).argmax(1) == y).double().mean())
    assert clean > 0.4 and pooled < clean  # the attack did something
    assert abs(own - pooled) < 1e-4  # AutoAttack logs its own robust accuracy (2 decimals of %)
    n = torch.bincount(y, minlength=10).float()
    assert abs(sum(a * k for a, k in zip(summary.per_class, n.tolist(), strict=True))
               / n.sum().item() - pooled) < 1e-9
    # resuming from the chunk file returns the same labels without attacking again
    y_again, own_again = autoattack_labels(model, x, y, protocol, torch.device("cpu"),
                                           partial=tmp_path / "aa.json")
    assert torch.equal(y_again, y_adv) and own_again == own
