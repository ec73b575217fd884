"""BAT: Balance Adversarial Training (Sun, Xu, Yao, Liang, Wu, Liang, Liu, Liu; AAAI 2023), `bat`.

Paper: "Improving Robust Fairness via Balance Adversarial Training", arXiv 2209.07534.
Official code: github.com/silvercherry/Improving-Robust-Fairness-via-Balance-Adversarial-Training
(read at 9bcee67: train.py, train_mode/stop_to_lastclean.py, train_mode/stop_to_firstadv.py; a
FAT fork whose `models/` folder is missing, so it does not run as published). The paper's text
was not available here: this file follows the official code.

Per batch, two TRADES-KL PGD runs (model in eval mode, start x + 0.001 N(0, 1) clipped to [0, 1],
the protocol's eps / alpha / K), each stopping examples early (FAT's early stop; the attack
rules `LastClean` and `FirstAdversarial` below, passed to the shared PGD: iterates 0..K-1 are
checked on the forward pass each gradient step needs anyway, and a stopped example takes no
more passes):
- "last clean" x_lc: an example stops at its first misclassified iterate and is returned as the
  iterate before it (the start point if the start is already misclassified; the last iterate if
  it is never misclassified): the source-class side, a point just inside the boundary.
- "first adversarial" x_fa: an example stops at the (tau + 1)-th iterate at which it is seen
  misclassified (tau = `patience`, official 1: one more step after crossing) and is returned as
  that iterate (the last iterate if that never happens): the target-class side.
Then, in train mode:
  loss = CE(f(x_lc), y) + beta KL(f(x) || f(x_fa))
         + mean_i [KL(f(x_lc_i) || U) + KL(f(x_fa_i) || U)]
with U the uniform distribution over the C classes (the last two terms, with no weight, are the
paper's "uniform distribution constraint": they pull both points' softmax towards uniform, i.e.
towards the decision boundary). All terms are batch means of per-example sums over classes;
gradients flow through every softmax, as in the official code.

Defaults (official): beta 6, patience (tau) 1.

Deviations from the official code:
- Checkpoints are selected on the validation split (official: FAT's last-epoch checkpoints).
- The protocol's optimiser and schedule (official: weight decay 2e-4, lr x0.1 at 75, x0.01 at
  90, x0.001 at 100).
- The batch is kept in its order (official: the early-stopped outputs are concatenated in
  stopping order and the first-adversarial set randomly permuted; the pairs stay aligned, so the
  loss is the same).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.attacks import Iterate, PGDRule
from benchmark.core.losses import kl_per_example
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import Choice


def kl_to_uniform(logits: Tensor) -> Tensor:
    """KL(softmax(logits) || uniform) per example = log C - entropy."""
    log_p = F.log_softmax(logits, dim=1)
    return (log_p.exp() * (log_p + math.log(logits.shape[1]))).sum(1)


class FirstAdversarial(PGDRule):
    """FAT's early stop for `pgd` (x_fa): an example stops at the iterate at which it is seen
    misclassified for the (patience + 1)-th time and is returned as that iterate. stopped_at[i]
    = the iterate returned (steps if never stopped: the last iterate)."""

    def __init__(self, patience: int = 0) -> None:
        self.patience = patience

    def begin(self, n: int, steps: int, device: torch.device) -> None:
        self.misses = torch.zeros(n, dtype=torch.long, device=device)
        self.stopped_at = torch.full((n,), steps, dtype=torch.long, device=device)

    def visit(self, it: Iterate) -> Tensor:
        wrong = it.wrong
        self.misses[it.idx] += wrong.long()
        go = ~(wrong & (self.misses[it.idx] > self.patience))
        self.stopped_at[it.idx[~go]] = self.returned_as(it.t)
        return go

    def returned_as(self, t: int) -> int:
        return t


class LastClean(FirstAdversarial):
    """x_lc for `pgd`: the stop of FirstAdversarial(patience=0), at an example's first
    misclassified iterate, but returning the iterate before it (the start point if the start is
    already misclassified); stopped_at likewise."""

    returns_previous = True

    def __init__(self) -> None:
        super().__init__(patience=0)

    def returned_as(self, t: int) -> int:
        return max(t - 1, 0)


@register_method("bat")
class Bat(Method):
    """TRADES on the first adversarial iterate, CE on the last clean one, both pulled towards a
    uniform softmax.

    Official recipe, cifar10 (silvercherry/Improving-Robust-Fairness-via-Balance-Adversarial-
        Training@9bcee67, train script argparse defaults):
        model resnet18; epochs 200; batch_size 128; lr 0.1; lr_milestones 74:0.1 89:0.01
        99:0.001; momentum 0.9; weight_decay 0.0002; eps 0.031; alpha 0.007; train_steps 10;
        beta 6; patience 1
    Deviations: none in the recipe; the repository's ResNet-18 definition is missing, the usual
    CIFAR ResNet-18 is used.
    """

    title = "BAT"
    recipes = {
        "cifar10": Recipe(
            source=("silvercherry/Improving-Robust-Fairness-via-Balance-Adversarial-"
                    "Training@9bcee67, train script argparse defaults"),
            protocol={"model": "resnet18", "epochs": 200, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((74, 0.1), (89, 0.01), (99, 0.001)), "momentum": 0.9,
                      "weight_decay": 0.0002, "eps": 0.031, "alpha": 0.007, "train_steps": 10},
            hparams={"beta": 6, "patience": 1},
            deviations=("none in the recipe; the repository's ResNet-18 definition is missing, "
                        "the usual CIFAR ResNet-18 is used"),
        ),
    }
    search_space = {"patience": Choice((0, 1, 2, 3))}  # tau: misses before stopping

    beta: float = setting(6.0, ge=0)
    patience: int = setting(1, ge=0)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        last_clean = ctx.attack(model, x, y, loss="kl", start="trades_clipped",
                                rule=LastClean()).x_adv
        first_adv = ctx.attack(model, x, y, loss="kl", start="trades_clipped",
                               rule=FirstAdversarial(self.patience)).x_adv
        lc, fa, clean = model(last_clean), model(first_adv), model(x)
        return (F.cross_entropy(lc, y) + self.beta * kl_per_example(clean, fa).mean()
                + (kl_to_uniform(lc) + kl_to_uniform(fa)).mean())
