"""DAFA: Distance-Aware Fair Adversarial training (Lee, Kim, Lee, Park, Lee, Yoon; ICLR 2024),
`trades_dafa`.

Paper: "DAFA: Distance-Aware Fair Adversarial Training", arXiv 2401.12532.
Official code: github.com/rucy74/DAFA (read at c60ba83: train.py, losses.py, utils.py,
arguments.py, scripts/trades_dafa.sh).

Mechanism:
- Warm-up is plain TRADES for the first round(70/110 * epochs) epochs (official: 70 of 110).
  Here the run warm-starts from the protocol's `trades` run one epoch before the warm-up ends
  and trains that last warm-up epoch itself (plain TRADES, same seed and batch order as the base,
  so it repeats the base's epoch), storing the softmax of every training adversarial example's
  logits (the loss's train-mode forward). Averaged per true class this gives p (C x C).
- Once, at the end of that epoch: W = 1, and for every pair i != j:
  if p_ii < p_jj (class i is harder): W_i += lam * p_ij * p_jj, else W_i -= lam * p_ji * p_ii
  (the official rule since commit 74657cd, Sep 2024, `weight_rule="current"`; before it the
  subtraction was lam * p_ij * p_jj, `weight_rule="original"`, the code the paper's numbers
  were presumably made with). W is not clipped or normalised.
- From then on, per example: eps_i = W_y eps and alpha_i = W_y alpha in the TRADES attack, and
  loss = mean_i W_y CE(f(x_i), y_i) + beta mean_i KL(f(x_i) || f(x_adv_i)) (W weights the clean
  term only).

Defaults (official): lam 1.0 (CIFAR-10; 1.5 for CIFAR-100 and STL-10), beta 6.

Deviations from the official code:
- A class weight W_k <= 0 (possible with a large lam; the official code would then attack with
  a negative radius) stops the run with a clear failure instead.
- Optimiser: the protocol's SGD without Nesterov (official: Nesterov on, because train.py
  inverts the flag) and the protocol's schedule (official: x0.1 at 100 and x0.01 at 105 of 110).
- Checkpoints are selected on the validation split (official: the last epoch is reported).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.errors import RunFailed, UserError
from benchmark.common.settings import setting
from benchmark.core.losses import kl_per_example, trades_loss
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.protocol import Protocol
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange

WEIGHT_RULES = ("current", "original")


# --- pure math ------------------------------------------------------------------------------
def class_weights(p: Tensor, lam: float, rule: str = "current") -> Tensor:
    """DAFA's W from the class-wise mean softmax p (rows: true class, columns: predicted)."""
    p = p.double()
    c = p.shape[0]
    w = torch.ones(c, dtype=torch.float64)
    for i in range(c):
        for j in range(c):
            if i == j:
                continue
            if p[i, i] < p[j, j]:
                w[i] += lam * p[i, j] * p[j, j]
            elif rule == "current":
                w[i] -= lam * p[j, i] * p[i, i]
            else:
                w[i] -= lam * p[i, j] * p[j, j]
    return w


@register_method("trades_dafa")
class TradesDafa(Method):
    """TRADES with DAFA's class weights W (from the last warm-up epoch's adversarial softmax):
    eps_i = W_y eps, alpha_i = W_y alpha, loss = mean W_y CE + beta mean KL.

    Official recipe, cifar10 (rucy74/DAFA@c60ba83, scripts/trades_dafa.sh over arguments.py
        defaults):
        model resnet18; epochs 110; batch_size 128; lr 0.1; lr_milestones 99:0.1 104:0.01;
        momentum 0.9; nesterov true; weight_decay 0.0005; eps 0.031; alpha 0.007; train_steps
        10; beta 6; lam 1; warmup_epochs 70; base.beta 6
    Deviations: none in the recipe (Nesterov momentum on, as train.py inverts its flag).

    Official recipe, cifar100 (rucy74/DAFA@c60ba83, arguments.py (lambda 1.5 for CIFAR-100 in its
        help text; the other settings as the CIFAR-10 script)):
        model resnet18; epochs 110; batch_size 128; lr 0.1; lr_milestones 99:0.1 104:0.01;
        momentum 0.9; nesterov true; weight_decay 0.0005; eps 0.031; alpha 0.007; train_steps
        10; beta 6; lam 1.5; warmup_epochs 70; base.beta 6
    Deviations: the repository ships only the CIFAR-10 script; the CIFAR-100 settings other than
    lambda are assumed equal.
    """

    title = "TRADES+DAFA"
    recipes = {
        "cifar10": Recipe(
            source=("rucy74/DAFA@c60ba83, scripts/trades_dafa.sh over arguments.py defaults"),
            protocol={"model": "resnet18", "epochs": 110, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((99, 0.1), (104, 0.01)), "momentum": 0.9,
                      "nesterov": True, "weight_decay": 0.0005, "eps": 0.031, "alpha": 0.007,
                      "train_steps": 10},
            hparams={"beta": 6, "lam": 1, "warmup_epochs": 70},
            base_hparams={"beta": 6},
            deviations=("none in the recipe (Nesterov momentum on, as train.py inverts its flag)"),
        ),
        "cifar100": Recipe(
            source=("rucy74/DAFA@c60ba83, arguments.py (lambda 1.5 for CIFAR-100 in its help "
                    "text; the other settings as the CIFAR-10 script)"),
            protocol={"model": "resnet18", "epochs": 110, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((99, 0.1), (104, 0.01)), "momentum": 0.9,
                      "nesterov": True, "weight_decay": 0.0005, "eps": 0.031, "alpha": 0.007,
                      "train_steps": 10},
            hparams={"beta": 6, "lam": 1.5, "warmup_epochs": 70},
            base_hparams={"beta": 6},
            deviations=("the repository ships only the CIFAR-10 script; the CIFAR-100 settings "
                        "other than lambda are assumed equal"),
        ),
    }

    core = True
    search_space = {"lam": LogRange(0.25, 4.0)}  # DAFA's lambda (weight strength)
    warm_start_base: ClassVar[str | None] = "trades"
    warmup_fraction: ClassVar[float] = 70 / 110

    beta: float = setting(6.0, ge=0)
    lam: float = setting(1.0, ge=0)
    weight_rule: str = setting("current", choices=WEIGHT_RULES)
    warmup_epochs: int | None = setting(None, ge=1)  # None: round(70/110 * epochs)

    def __post_init__(self) -> None:
        self._weights: Tensor | None = None       # W, once computed
        self._prob_sum = torch.zeros(0, dtype=torch.float64)  # last warm-up epoch's sums
        self._seen = torch.zeros(0, dtype=torch.float64)

    def warmup_end(self, protocol: Protocol) -> int:
        """The first epoch trained with W (epochs before it are TRADES)."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        return max(1, round(self.warmup_fraction * protocol.epochs))

    def validate(self, protocol: Protocol) -> None:
        if self.warmup_end(protocol) >= protocol.epochs:
            raise UserError(f"trades_dafa: warm-up of {self.warmup_end(protocol)} epochs leaves no "
                            f"DAFA epoch in {protocol.epochs}; set trades_dafa.warmup_epochs lower")

    def warm_start(self, protocol: Protocol) -> tuple[str, int] | None:
        return "trades", self.warmup_end(protocol) - 1  # the last warm-up epoch is ours

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        if self._weights is None:  # the last warm-up epoch: plain TRADES, collect p
            x_adv = ctx.attack(model, x, y, loss="kl", start="trades").x_adv
            clean, adv = model(x), model(x_adv)
            probs = adv.detach().softmax(1).double().cpu()
            self._prob_sum.index_add_(0, y.cpu(), probs)
            self._seen += torch.bincount(y.cpu(), minlength=ctx.num_classes).double()
            return trades_loss(clean, adv, y, self.beta)
        w = self._weights.to(x.device, torch.float32)[y]
        x_adv = ctx.attack(model, x, y, loss="kl", start="trades", eps=w * ctx.eps,
                           alpha=w * ctx.alpha).x_adv
        clean, adv = model(x), model(x_adv)
        ce = F.cross_entropy(clean, y, reduction="none")
        return (w * ce).mean() + self.beta * kl_per_example(clean, adv).mean()

    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        c = ctx.num_classes
        self._prob_sum = torch.zeros(c, c, dtype=torch.float64)
        self._seen = torch.zeros(c, dtype=torch.float64)
        return {} if self._weights is None else {"dafa_weights": self._weights.tolist()}

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        if self._weights is not None:
            return {}
        p = self._prob_sum / self._seen.clamp(min=1)[:, None]
        weights = class_weights(p, self.lam, self.weight_rule)
        if bool((weights <= 0).any()):
            k = int(weights.argmin())
            raise RunFailed(f"DAFA class weight W[{k}] = {float(weights[k]):.3f} <= 0 (a "
                            f"non-positive attack radius); lower trades_dafa.lam",
                            epoch=ctx.epoch + 1, batch=ctx.batch)
        self._weights = weights
        return {"dafa_p_diag": p.diagonal().tolist(), "dafa_weights": weights.tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self._weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._weights = state.get("weights")
