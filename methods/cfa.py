"""CFA: Class-wise Calibrated Fair Adversarial Training (Wei, Wang, Guo, Wang; CVPR 2023),
`pgd_at_cfa` and `trades_cfa`.

Paper: "CFA: Class-wise Calibrated Fair Adversarial Training", arXiv 2303.14460.
Official code: github.com/PKU-ML/CFA (read at 071f333: train.py, attack.py, utils.py).

Mechanism, as the official code runs it:
- t_k: from the training adversarial examples of the previous epoch (the training step's own
  adversarial logits, train mode, counted over the whole epoch as the weights move), as the
  official `CW_log` computes it: t_k = C * correct_k / N = (C n_k / N) * acc_k (`t_rule=
  "official"`, the default), which equals class k's accuracy acc_k only on a balanced training
  set (on full SVHN C n_k / N ranges from about 0.62 to 1.93); `t_rule="accuracy"` uses acc_k,
  the paper's description. From epoch `calibrate_from` on (official: 10 of 200; default here
  round(10/200 * epochs), at least 1):
  - CCM (class-wise margin): eps_k = (lambda_eps + t_k) * eps, no clipping; the attack step stays
    the protocol's alpha whatever eps_k is (official: 2/255 for every class).
  - CCR (class-wise regularisation, `trades_cfa`): beta_k = (lambda_beta + t_k) * beta and the
    TRADES loss is mean_i [(1 - b_i) CE_i + b_i KL_i] with b_i = beta_y / (1 + beta_y). Before
    calibration b = beta / (1 + beta) for every class, so even the uncalibrated epochs train
    TRADES scaled by 1 / (1 + beta), as the official code does.
- FAWA (fairness-aware weight averaging): after every epoch the current model's worst-class
  validation robust accuracy is compared with `threshold` (>=). The first passing epoch copies
  the model into the average; later passing epochs update it as an EMA with `decay` (every
  float state entry, BatchNorm buffers included; integer counters are copied). Once it exists,
  the average is the run's model: validated for checkpoint selection, saved, evaluated, and
  resumed (it is method state in the checkpoint).

Defaults (official argparse): lambda_eps = lambda_beta = 0.5, beta 6, threshold 0.24, decay
0.88 (the README's only command, AT + CCM, uses threshold 0.2; the paper's TRADES setting is not
in the repository). `pgd_at_cfa` runs CCM (as that command); `trades_cfa` CCM + CCR.

Deviations from the official code:
- The AT attack runs in eval mode, like every attack here (official: train mode, which updates
  BatchNorm running statistics with adversarial batches during the attack).
- FAWA's gate uses the trainer's validation attack (PGD with the protocol's `val_steps`, step
  eps/4, base eps; official: PGD-10, step 2/255 = eps/4 at 8/255) on the protocol's
  class-balanced validation split (official: the first 100 training images of each class).
- Before the first passing epoch there is no average and the trained model is the run's model
  (official: the still randomly initialised average is evaluated).
- Checkpoints are selected on the validation split (official: on the test set).
- `trades_cfa` uses one clean forward for the CE term and the KL target (official: a second,
  identical train-mode clean forward for the KL target, which updates BatchNorm statistics once
  more).
- The official code averages `num_batches_tracked` as a float; here it is copied.
- The official training loop runs one more train-mode forward of the clean batch after every
  update (to log clean accuracy), which moves BatchNorm running statistics towards clean data;
  it is not repeated here (a method's loss cannot act after the update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.losses import kl_per_example
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange

T_RULES = ("official", "accuracy")
CALIBRATE_FRACTION = 10 / 200  # the official begin epoch of the official 200-epoch run


# --- pure math ------------------------------------------------------------------------------
def class_eps(train_robust: Tensor, lam: float, eps: float) -> Tensor:
    """CCM: eps_k = (lam + t_k) * eps."""
    return (lam + train_robust) * eps


def class_trades_weight(train_robust: Tensor | None, lam: float, beta: float,
                        num_classes: int) -> Tensor:
    """CCR: b_k = beta_k / (1 + beta_k), beta_k = (lam + t_k) * beta (beta_k = beta when
    `train_robust` is None: before calibration)."""
    beta_k = torch.full((num_classes,), float(beta), dtype=torch.float64) \
        if train_robust is None else (lam + train_robust.double()) * beta
    return beta_k / (1 + beta_k)


def fawa_update(average: dict[str, Tensor] | None, weights: dict[str, Tensor], decay: float
                ) -> dict[str, Tensor]:
    """The first call copies `weights`; later calls return decay * average + (1 - decay) *
    weights for float entries, and copy integer entries (BatchNorm's num_batches_tracked)."""
    if average is None:
        return {k: v.detach().clone() for k, v in weights.items()}
    out = {}
    for key, value in weights.items():
        value = value.detach()
        if value.is_floating_point():
            out[key] = decay * average[key].to(value.device, value.dtype) + (1 - decay) * value
        else:
            out[key] = value.clone()
    return out


def fawa_passes(worst_class_robust: float, threshold: float) -> bool:
    """FAWA's gate: the epoch counts when the worst class's validation robust accuracy reaches
    the threshold (equal passes, as the official `>=`)."""
    return worst_class_robust >= threshold


def class_t(hits: Tensor, seen: Tensor, rule: str, previous: Tensor | None) -> Tensor:
    """t_k from an epoch's per-class correct counts and example counts. "official" (CFA's
    train.py): C * hits_k / N = (C n_k / N) acc_k, which is acc_k only on a balanced training
    set; "accuracy": acc_k (a class not seen this epoch keeps its previous value)."""
    if rule == "official":
        return len(hits) * hits / seen.sum().clamp(min=1)
    acc = hits / seen.clamp(min=1)
    return torch.where(seen > 0, acc, previous if previous is not None else acc)


# --- the methods ----------------------------------------------------------------------------
@dataclass
class CFA(Method):
    """Shared CFA logic: class-wise eps from the previous epoch's training robust accuracy and
    FAWA. Subclasses bring the loss."""

    lambda_eps: float = setting(0.5, ge=0)                  # lambda_1 (CCM)
    ccm: bool = True
    fawa: bool = True
    threshold: float = setting(0.24, ge=0, le=1)
    decay: float = setting(0.88, ge=0, lt=1)
    calibrate_from: int | None = setting(None, ge=1)       # None: round(10/200 * epochs), >= 1
    # t_k: "official" C n_k / N * acc_k (= C hits_k / N), "accuracy" acc_k (equal when balanced)
    t_rule: str = setting("official", choices=T_RULES)

    def __post_init__(self) -> None:
        self._train_robust: Tensor | None = None            # t_k of the last finished epoch
        self._average: dict[str, Tensor] | None = None      # FAWA weights
        self._fawa_updates = 0
        self._hits = torch.zeros(0, dtype=torch.float64)    # this epoch's counts per class
        self._seen = torch.zeros(0, dtype=torch.float64)

    def calibration_epoch(self, epochs: int) -> int:
        if self.calibrate_from is not None:
            return self.calibrate_from
        return max(1, round(CALIBRATE_FRACTION * epochs))

    def calibrated(self, ctx: TrainContext) -> bool:
        return (self._train_robust is not None
                and ctx.epoch >= self.calibration_epoch(ctx.protocol.epochs))

    def example_eps(self, y: Tensor, ctx: TrainContext) -> Tensor | float:
        if not (self.ccm and self.calibrated(ctx)):
            return ctx.eps
        assert self._train_robust is not None
        return class_eps(self._train_robust, self.lambda_eps, ctx.eps).to(y.device)[y]

    def count(self, adv_logits: Tensor, y: Tensor) -> None:
        """Count the training adversarial examples' correct predictions per class (t_k)."""
        c = self._hits.numel()
        hit = adv_logits.detach().argmax(1) == y
        self._hits += torch.bincount(y[hit], minlength=c).cpu().double()
        self._seen += torch.bincount(y, minlength=c).cpu().double()

    # hooks ------------------------------------------------------------------------------
    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._hits = torch.zeros(ctx.num_classes, dtype=torch.float64)
        self._seen = torch.zeros(ctx.num_classes, dtype=torch.float64)
        active = self.calibrated(ctx)
        log: dict[str, Any] = {"cfa_calibrated": int(active)}
        if active and self._train_robust is not None:
            log["cfa_eps"] = (class_eps(self._train_robust, self.lambda_eps, ctx.eps).tolist()
                              if self.ccm else [ctx.eps] * ctx.num_classes)
        return log

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._train_robust = class_t(self._hits, self._seen, self.t_rule, self._train_robust)
        log: dict[str, Any] = {"cfa_train_robust": self._train_robust.tolist()}
        if self.fawa:
            worst = float(ctx.validate(model)["robust_worst"])
            passed = fawa_passes(worst, self.threshold)
            if passed:
                self._average = fawa_update(self._average, model.state_dict(),
                                            self.decay)
                self._fawa_updates += 1
            log.update(cfa_val_robust_worst=worst, cfa_fawa_passed=int(passed),
                       cfa_fawa_updates=self._fawa_updates)
        return log

    def kept_weights(self, model: nn.Module) -> dict[str, Tensor] | None:
        return self._average

    def state_dict(self) -> dict[str, Any]:
        return {"train_robust": self._train_robust, "average": self._average,
                "fawa_updates": self._fawa_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._train_robust = state.get("train_robust")
        self._average = state.get("average")
        self._fawa_updates = int(state.get("fawa_updates", 0))


@register_method("pgd_at_cfa")
class PgdAtCfa(CFA):
    """PGD-AT with CFA's class-wise eps (CCM) and FAWA: loss = mean CE(f(x_adv), y), x_adv =
    PGD-K on CE from a uniform start in the class's eps_k ball, step alpha.

    Official recipe, cifar10 (PKU-ML/CFA@071f333, the README command (--mode AT --ccm --lambda-1 0.5
        --threshold 0.2) over train.py defaults):
        model preact_resnet18; epochs 200; batch_size 128; lr 0.1; lr_milestones 100:0.1
        150:0.01; momentum 0.9; weight_decay 0.0005; eps 8/255; alpha 2/255; train_steps 10;
        lambda_eps 0.5; threshold 0.2; decay 0.88; calibrate_from 10
    Deviations: the official validation split is 100 training images per class; here the preset's.
    """

    title = "PGD-AT+CFA"
    recipes = {
        "cifar10": Recipe(
            source=("PKU-ML/CFA@071f333, the README command (--mode AT --ccm --lambda-1 0.5 "
                    "--threshold 0.2) over train.py defaults"),
            protocol={"model": "preact_resnet18", "epochs": 200, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((100, 0.1), (150, 0.01)), "momentum": 0.9,
                      "weight_decay": 0.0005, "eps": 8 / 255, "alpha": 2 / 255,
                      "train_steps": 10},
            hparams={"lambda_eps": 0.5, "threshold": 0.2, "decay": 0.88, "calibrate_from": 10},
            deviations=("the official validation split is 100 training images per class; here "
                        "the preset's"),
        ),
    }
    search_space = {"lambda_eps": LogRange(0.1, 0.9)}  # lambda_1: class-wise eps strength

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        x_adv = ctx.attack(model, x, y, eps=self.example_eps(y, ctx), loss="ce",
                           start="uniform").x_adv
        logits = model(x_adv)
        self.count(logits, y)
        return F.cross_entropy(logits, y)


@register_method("trades_cfa")
class TradesCfa(CFA):
    """TRADES with CFA's class-wise eps (CCM), class-wise beta (CCR) and FAWA:
    loss = mean_i (1 - b_y) CE(f(x_i), y_i) + b_y KL(f(x_i) || f(x_adv_i)).

    Official recipe, cifar10 (CFA paper, Sec. 5.1 (the repository has no TRADES command), over PKU-
        ML/CFA@071f333 train.py defaults):
        model preact_resnet18; epochs 200; batch_size 128; lr 0.1; lr_milestones 100:0.1
        150:0.01; momentum 0.9; weight_decay 0.0005; eps 8/255; alpha 2/255; train_steps 10;
        beta 6; lambda_eps 0.3; lambda_beta 0.5; threshold 0.2; decay 0.85; calibrate_from 10
    Deviations: the paper's lambda_1 0.3 and decay 0.85 (code defaults 0.5 and 0.88); the paper
    starts weight averaging at epoch 50, the code (and this) whenever the threshold is first met.
    """

    title = "TRADES+CFA"
    recipes = {
        "cifar10": Recipe(
            source=("CFA paper, Sec. 5.1 (the repository has no TRADES command), over "
                    "PKU-ML/CFA@071f333 train.py defaults"),
            protocol={"model": "preact_resnet18", "epochs": 200, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((100, 0.1), (150, 0.01)), "momentum": 0.9,
                      "weight_decay": 0.0005, "eps": 8 / 255, "alpha": 2 / 255,
                      "train_steps": 10},
            hparams={"beta": 6, "lambda_eps": 0.3, "lambda_beta": 0.5, "threshold": 0.2,
                     "decay": 0.85, "calibrate_from": 10},
            deviations=("the paper's lambda_1 0.3 and decay 0.85 (code defaults 0.5 and 0.88); "
                        "the paper starts weight averaging at epoch 50, the code (and this) "
                        "whenever the threshold is first met"),
        ),
    }
    search_space = {"lambda_eps": LogRange(0.1, 0.9), "lambda_beta": LogRange(0.1, 0.9)}

    beta: float = setting(6.0, ge=0)
    lambda_beta: float = setting(0.5, ge=0)                 # lambda_2 (CCR)
    ccr: bool = True

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        x_adv = ctx.attack(model, x, y, eps=self.example_eps(y, ctx), loss="kl",
                           start="trades").x_adv
        clean, adv = model(x), model(x_adv)
        self.count(adv, y)
        t = self._train_robust if self.ccr and self.calibrated(ctx) else None
        b = class_trades_weight(t, self.lambda_beta, self.beta, ctx.num_classes)
        ce = F.cross_entropy(clean, y, reduction="none")
        b = b.to(x.device, torch.float32)[y]
        return ((1 - b) * ce + b * kl_per_example(clean, adv)).mean()
