"""Predictions of a model, clean and under PGD (a point counts as robust only if it is also
correct clean)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmark.core.attacks import pgd
from benchmark.core.datasets.base import to_float


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    model.eval()
    out = [model(to_float(x[i:i + batch_size]).to(device)).argmax(1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def pgd_predictions(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, alpha: float,
                    steps: int, loss: str, batch_size: int, device: torch.device,
                    seed: int = 0, progress: Callable[[int], None] | None = None) -> Tensor:
    """Predictions on PGD adversarial examples (uniform start, fixed seed)."""
    torch.manual_seed(seed)
    model.eval()
    preds = []
    for i in range(0, len(x), batch_size):
        xb, yb = to_float(x[i:i + batch_size]).to(device), y[i:i + batch_size].to(device)
        x_adv = pgd(model, xb, yb, eps=eps, alpha=alpha, steps=steps, loss=loss).x_adv
        with torch.no_grad():
            preds.append(model(x_adv).argmax(1).cpu())
        if progress:
            progress(len(yb))
    return torch.cat(preds)


def robust_predictions(model: nn.Module, x: Tensor, y: Tensor, clean_pred: Tensor, *,
                       eps: float, alpha: float, steps: int, loss: str, batch_size: int,
                       device: torch.device, seed: int = 0,
                       progress: Callable[[int], None] | None = None) -> Tensor:
    """Predictions under PGD where a point counts as robust only if it is also classified
    correctly clean (AutoAttack's rule): only the clean-correct points are attacked, the others
    keep their (wrong) clean prediction."""
    correct = (clean_pred == y).nonzero().flatten()
    pred = clean_pred.clone()
    if progress:
        progress(len(y) - len(correct))
    if len(correct):
        pred[correct] = pgd_predictions(model, x[correct], y[correct], eps=eps, alpha=alpha,
                                        steps=steps, loss=loss, batch_size=batch_size,
                                        device=device, seed=seed, progress=progress)
    return pred

