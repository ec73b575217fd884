"""WAT: Worst-class Adversarial Training (Li & Liu, AAAI 2023), `trades_wat`.

Paper: "WAT: Improve the Worst-class Robustness in Adversarial Training", arXiv 2302.04025.
Official code: github.com/boqili/WAT (read at 62d1184: worst_class_adversarial_train.py,
attack_generator.py, data_loader.py); the method is its `--alg wat`.

Mechanism (no-regret "experts" over C classes plus one "average" expert):
- Training is TRADES (KL attack from x + 0.001 N(0, 1)) with per-example weight
  w_{y_i} + w_avg: loss = mean_i (w_{y_i} + w_avg) (CE_i + beta KL_i). The w_avg term is plain
  TRADES times w_avg, a floor shared by every class.
- After every epoch, on the validation split with the same TRADES attack (model in eval mode):
  cost_k = class k's mean of CE + beta KL on its adversarial examples, and cost_avg = the mean
  over all validation images. Costs accumulate over epochs, and
  w = C * softmax(eta * cumulative cost) over the C + 1 entries (so the weights sum to C).
- Weights start at ones(C + 1): the first epoch trains on 2x TRADES, as the official code does.

Defaults (official): beta 6, eta 0.1.

Deviations from the official code:
- Validation costs are true means over the validation images (official: sums divided by
  batches x batch size, 3072 for 3000 images, so about 0.977x the mean).
- Validation split: the protocol's class-balanced split (official: the last 300 training images
  of each class); its attack uses the protocol's training eps / alpha / steps (official: the
  training attack too).
- Cumulative costs and weights are method state in the checkpoint, so a resumed run continues
  them (official: a resume restarts from ones).
- Checkpoints are selected on the validation split (official: none; every 3rd epoch saved).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.losses import kl_per_example
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange


# --- pure math ------------------------------------------------------------------------------
def expert_weights(cumulative_cost: Tensor, eta: float) -> Tensor:
    """w = C * softmax(eta * cumulative cost) over the C class experts and the average expert
    (the last entry); the weights sum to C."""
    c = cumulative_cost.numel() - 1
    return c * torch.softmax(eta * cumulative_cost.double(), dim=0)


def class_costs(per_example: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """[mean cost of class k for k < C] + [mean over all examples] (C + 1 entries)."""
    per_example, y = per_example.double().cpu(), y.cpu()
    sums = torch.bincount(y, weights=per_example, minlength=num_classes)
    n = torch.bincount(y, minlength=num_classes).clamp(min=1)
    return torch.cat([sums / n, per_example.mean().reshape(1)])


def trades_costs(clean: Tensor, adv: Tensor, y: Tensor, beta: float) -> Tensor:
    """CE(f(x), y) + beta KL(f(x) || f(x_adv)) per example (the experts' cost)."""
    return F.cross_entropy(clean, y, reduction="none") + beta * kl_per_example(clean, adv)


def validation_costs(model: nn.Module, loader: TensorLoader, ctx: TrainContext, beta: float
                     ) -> Tensor:
    """Per-class (and overall) mean CE + beta KL of the validation split's TRADES adversarial
    examples, model in eval mode (mode restored)."""
    was_training = model.training
    model.eval()
    costs, labels = [], []
    try:
        for x, y in loader:
            x_adv = ctx.attack(model, x, y, loss="kl", start="trades").x_adv
            with torch.no_grad():
                clean, adv = model(x), model(x_adv)
                costs.append(trades_costs(clean, adv, y, beta))
            labels.append(y)
    finally:
        model.train(was_training)
    return class_costs(torch.cat(costs), torch.cat(labels), ctx.num_classes)


@register_method("trades_wat")
class TradesWat(Method):
    """TRADES weighted per class by WAT's exponentiated validation costs:
    loss = mean_i (w_{y_i} + w_avg) (CE(f(x_i), y_i) + beta KL(f(x_i) || f(x_adv_i))).

    Official recipe, cifar10 (boqili/WAT@62d1184, the README command (--net resnet18 --beta 6.0
        --alg wat --eta 0.1) over worst_class_adversarial_train.py defaults):
        model resnet18; epochs 100; batch_size 128; lr 0.1; lr_milestones 74:0.1 89:0.01
        99:0.001; momentum 0.9; weight_decay 0.0002; eps 0.031; alpha 0.007; train_steps 10;
        beta 6; eta 0.1
    Deviations: the official validation split is the last 300 training images per class; here the
    preset's.
    """

    title = "TRADES+WAT"
    recipes = {
        "cifar10": Recipe(
            source=("boqili/WAT@62d1184, the README command (--net resnet18 --beta 6.0 --alg wat "
                    "--eta 0.1) over worst_class_adversarial_train.py defaults"),
            protocol={"model": "resnet18", "epochs": 100, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((74, 0.1), (89, 0.01), (99, 0.001)), "momentum": 0.9,
                      "weight_decay": 0.0002, "eps": 0.031, "alpha": 0.007, "train_steps": 10},
            hparams={"beta": 6, "eta": 0.1},
            deviations=("the official validation split is the last 300 training images per "
                        "class; here the preset's"),
        ),
    }
    search_space = {"eta": LogRange(0.01, 1.0)}  # the experts' learning rate

    beta: float = setting(6.0, ge=0)
    eta: float = setting(0.1, ge=0)

    def __post_init__(self) -> None:
        self._cumulative: Tensor | None = None   # C + 1 summed validation costs
        self._weights: Tensor | None = None      # C + 1 expert weights

    def _ensure(self, num_classes: int) -> None:
        if self._weights is None:
            self._weights = torch.ones(num_classes + 1, dtype=torch.float64)
            self._cumulative = torch.zeros(num_classes + 1, dtype=torch.float64)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        self._ensure(ctx.num_classes)
        assert self._weights is not None
        x_adv = ctx.attack(model, x, y, loss="kl", start="trades").x_adv
        clean, adv = model(x), model(x_adv)
        w = self._weights.to(x.device, torch.float32)
        return ((w[y] + w[-1]) * trades_costs(clean, adv, y, self.beta)).mean()

    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._ensure(ctx.num_classes)
        assert self._weights is not None
        return {"wat_weights": self._weights.tolist()}

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._ensure(ctx.num_classes)
        assert self._cumulative is not None
        cost = validation_costs(model, ctx.val_loader, ctx, self.beta)
        self._cumulative = self._cumulative + cost
        self._weights = expert_weights(self._cumulative, self.eta)
        return {"wat_val_cost": cost.tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"cumulative": self._cumulative, "weights": self._weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._cumulative = state.get("cumulative")
        self._weights = state.get("weights")
