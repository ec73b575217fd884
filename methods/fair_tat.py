"""FAIR-TAT: Fair Targeted Adversarial Training (Medi, Jung, Keuper; WACV 2025), `fair_tat`.

Paper: "FAIR-TAT: Improving Model Fairness Using Targeted Adversarial Training", arXiv 2410.23142.
Official code: github.com/TejaswiniMedi/FAIR-TAT (read at 0154dc3: target_train_new.py, with the
Targeted_attack.py (0188869) and utils.py (164a30d) it imports from and the README (043189c); the
index does not date versions: these are the ones that fit together and the README). It is built on
CFA's code (methods/cfa.py: class-wise eps, the averages).

What runs: the README's targeted command with `--mode AT`. The argparse default `--mode TRADES`
(and FAT) stops in its first epoch with a NameError: this version imports only the AT losses, the
TRADES/FAT ones being commented out in Targeted_attack.py. In an older stored version
(target_train_new.py 4598f2c) no mode runs: it passes `cw_eps=` to `cw_pgd_loss(eps, ...)` and
`x=` to `cw_trades_loss(x_natural, ...)`, whose KL attack ignored the target anyway. The
repository has no `model.py`, whose PreActResNet18 the script imports.

Mechanism (`--adaptive_eps G-rob`, `--untargeted 0`), counted over epoch e - 1's training
adversarial logits (N examples; tp_k right of true class k; fp_k wrong predictions *into* k):
- s_k = C tp_k / N (`robust_cw_acc_gt`: class k's accuracy on a balanced set) and
  cfps_k = fp_k / (N - sum tp), the share of the epoch's errors predicted as k.
- From epoch `calibrate_from` (official `--begin` 1): eps_k = (lambda_eps + s_k) eps, as CFA's
  CCM, and target law q = softmax(cfps_scale * cfps) (official: 2 cfps). Before it: eps, uniform.
- Per batch: y_t ~ q, redrawn while y_t = y (class j != y has probability q_j / (1 - q_y)); with
  `random_target` (or before calibration) uniform over the other classes.
- x_adv: targeted PGD-K from a uniform start in the eps_y ball, each step
  x - alpha sign grad CE(f(x), y_t) projected to the ball and [0, 1]; alpha stays the protocol's.
  Descending CE(y_t) is the shared primitive's ascent with step -alpha, so `ctx.attack` runs it
  unchanged (same start, projection and pass counting; no step loop of our own).
- loss = mean CE(f(x_adv), y); `clean_bn_forward`: the official unused train-mode clean forward
  before the update (it only moves BatchNorm statistics).
Checked against the official functions (scratch script, same tiny inputs): attack iterates within
6e-8 (float rounding of x + delta), s and cfps equal, the sampler's frequencies those of q.
Defaults: lambda_eps 0.5, cfps_scale 2, calibrate_from 1.

Deviations from the official code:
- The attack runs in eval mode, like every attack here (official: train mode, so BatchNorm
  statistics also see the 10 iterates); the official clean train-mode forward after each update
  (for its log) is not repeated (a loss cannot act after the update).
- Every target equal to y is redrawn (official: when exactly one example of a batch collides,
  `nonzero().squeeze()` is 0-d and it keeps y_t = y; about 2e-5 per batch of 128).
- An epoch without a training error gives uniform targets (official: cfps 0/0, NaN, a crash).
- The attack takes the protocol's steps (official: 10, hard-coded in train_epoch).
- Checkpoints on validation (official: test robust + worst-class robust, from epoch 100). The
  official script also keeps CFA's EMA (every epoch) and FAWA (worst validation class >= 0.2)
  averages at decay 0.85 and saves all three; which one the paper reports the code does not say.
  The trained model is kept here; `keep="ema"` / `"fawa"` keeps that average instead (FAWA
  gated by the trainer's validation, as methods/cfa.py).
- `--kldiv` (0 in this version) and the untargeted/TRADES/FAT modes are not offered, except
  `untargeted=True` (official `--untargeted 1`: PGD on CE(y) with the class-wise eps).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange
from methods.cfa import fawa_passes, fawa_update

KEEP = ("trained", "ema", "fawa")  # the run's model: the trained one or an average


# --- pure math ------------------------------------------------------------------------------
def error_counts(logits: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(tp, fp): per true class the correct predictions, per predicted class the wrong ones."""
    pred = logits.detach().argmax(1)
    hit = pred == y
    tp = torch.bincount(y[hit], minlength=num_classes)
    fp = torch.bincount(pred[~hit], minlength=num_classes)
    return tp.cpu().double(), fp.cpu().double()


def robust_share(tp: Tensor, n: float) -> Tensor:
    """s_k = C tp_k / N (the official `robust_cw_acc_gt`)."""
    return len(tp) * tp / max(n, 1.0)


def false_positive_share(fp: Tensor) -> Tensor:
    """cfps_k = fp_k / sum_j fp_j (the official `robust_cw_cfps_gt`; zeros without errors)."""
    total = float(fp.sum())
    return fp / total if total > 0 else torch.zeros_like(fp)


def class_eps(share: Tensor, lam: float, eps: float) -> Tensor:
    """eps_k = (lam + s_k) eps."""
    return (lam + share) * eps


def target_law(cfps: Tensor | None, scale: float, num_classes: int) -> Tensor:
    """q = softmax(scale * cfps); uniform when `cfps` is None."""
    if cfps is None:
        return torch.full((num_classes,), 1 / num_classes, dtype=torch.float64)
    return torch.softmax(scale * cfps.double(), dim=0)


def sample_targets(y: Tensor, law: Tensor) -> Tensor:
    """y_t ~ law per example, redrawn wherever y_t == y."""
    probs = law.to(y.device, torch.float32)
    y_t = torch.multinomial(probs, len(y), replacement=True)
    clash = y_t == y
    while bool(clash.any()):
        y_t[clash] = torch.multinomial(probs, int(clash.sum()), replacement=True)
        clash = y_t == y
    return y_t


def targeted_attack(ctx: TrainContext, model: nn.Module, x: Tensor, y_t: Tensor,
                    eps: Tensor | float) -> Tensor:
    """Targeted L-inf PGD: steps x - alpha sign grad CE(f(x), y_t) from a uniform start, i.e.
    the shared primitive's CE ascent on the target label with step -alpha."""
    return ctx.attack(model, x, y_t, eps=eps, alpha=-ctx.alpha, loss="ce",
                      start="uniform").x_adv


# --- the method -----------------------------------------------------------------------------
@register_method("fair_tat")
class FairTat(Method):
    """PGD-AT on targeted adversarial examples whose targets follow the previous epoch's
    false-positive shares, with CFA's class-wise eps: loss = mean CE(f(x_adv), y).

    Official recipe, cifar10 (TejaswiniMedi/FAIR-TAT@0154dc3, the README's targeted AT command
        (--mode AT --ccm --lambda-r 0.5 --untargeted 0 --adaptive_eps G-rob) over
        target_train_new.py defaults):
        model preact_resnet18; epochs 200; batch_size 128; lr 0.1; lr_milestones 100:0.1
        150:0.01; momentum 0.9; weight_decay 0.0005; eps 8/255; alpha 2/255; train_steps 10;
        lambda_eps 0.5; cfps_scale 2; calibrate_from 1
    Deviations: the repository lacks the PreActResNet18 module (model.py) the script imports; its
    validation split is the first 100 training images per class, here the preset's; its default
    --mode TRADES does not run in this version, so the AT command is the recipe.
    """

    title = "FAIR-TAT"
    recipes = {
        "cifar10": Recipe(
            source=("TejaswiniMedi/FAIR-TAT@0154dc3, the README's targeted AT command (--mode AT "
                    "--ccm --lambda-r 0.5 --untargeted 0 --adaptive_eps G-rob) over "
                    "target_train_new.py defaults"),
            protocol={"model": "preact_resnet18", "epochs": 200, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((100, 0.1), (150, 0.01)), "momentum": 0.9,
                      "weight_decay": 0.0005, "eps": 8 / 255, "alpha": 2 / 255,
                      "train_steps": 10},
            hparams={"lambda_eps": 0.5, "cfps_scale": 2, "calibrate_from": 1},
            deviations=("the repository lacks the PreActResNet18 module (model.py) the script "
                        "imports; its validation split is the first 100 training images per "
                        "class, here the preset's; its default --mode TRADES does not run in "
                        "this version, so the AT command is the recipe"),
        ),
    }
    # lambda_r (class-wise eps strength) and the target law's sharpness
    search_space = {"lambda_eps": LogRange(0.1, 0.9), "cfps_scale": LogRange(0.5, 8.0)}

    lambda_eps: float = setting(0.5, ge=0)           # official --lambda-r (G-rob)
    cfps_scale: float = setting(2.0, ge=0)           # q = softmax(cfps_scale * cfps)
    calibrate_from: int = setting(1, ge=1)           # official --begin
    adaptive_eps: bool = True                        # off: eps and uniform targets throughout
    random_target: bool = False                      # uniform targets every epoch
    untargeted: bool = False                         # official --untargeted 1: PGD on CE(y)
    clean_bn_forward: bool = True
    keep: str = setting("trained", choices=KEEP)
    threshold: float = setting(0.2, ge=0, le=1)      # FAWA gate (official --thershold)
    decay: float = setting(0.85, ge=0, lt=1)         # official --decay-rate

    def __post_init__(self) -> None:
        self._share: Tensor | None = None     # s_k of the last finished epoch
        self._cfps: Tensor | None = None      # cfps_k of the last finished epoch
        self._average: dict[str, Tensor] | None = None
        self._average_updates = 0
        self._tp = self._fp = torch.zeros(0, dtype=torch.float64)
        self._seen = 0.0

    def calibrated(self, ctx: TrainContext) -> bool:
        return (self.adaptive_eps and self._share is not None
                and ctx.epoch >= self.calibrate_from)

    def example_eps(self, y: Tensor, ctx: TrainContext) -> Tensor | float:
        if not self.calibrated(ctx):
            return ctx.eps
        assert self._share is not None
        return class_eps(self._share, self.lambda_eps, ctx.eps).to(y.device)[y]

    def law(self, ctx: TrainContext) -> Tensor:
        """The target law of this epoch (uniform before calibration or with random_target)."""
        cfps = self._cfps if self.calibrated(ctx) and not self.random_target else None
        return target_law(cfps, self.cfps_scale, ctx.num_classes)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        eps = self.example_eps(y, ctx)
        if self.untargeted:
            x_adv = ctx.attack(model, x, y, eps=eps, loss="ce", start="uniform").x_adv
        else:
            x_adv = targeted_attack(ctx, model, x, sample_targets(y, self.law(ctx)), eps)
        logits = model(x_adv)
        if self.clean_bn_forward:  # after the adversarial forward, as official
            with torch.no_grad():
                model(x)
        tp, fp = error_counts(logits, y, ctx.num_classes)
        self._tp, self._fp, self._seen = self._tp + tp, self._fp + fp, self._seen + len(y)
        return F.cross_entropy(logits, y)

    # hooks ------------------------------------------------------------------------------
    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._tp = torch.zeros(ctx.num_classes, dtype=torch.float64)
        self._fp = torch.zeros(ctx.num_classes, dtype=torch.float64)
        self._seen = 0.0
        log: dict[str, Any] = {"fair_tat_calibrated": int(self.calibrated(ctx)),
                               "fair_tat_target_law": self.law(ctx).tolist()}
        if self.calibrated(ctx):
            assert self._share is not None
            log["fair_tat_eps"] = class_eps(self._share, self.lambda_eps, ctx.eps).tolist()
        return log

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._share = robust_share(self._tp, self._seen)
        self._cfps = false_positive_share(self._fp)
        log: dict[str, Any] = {"fair_tat_robust_share": self._share.tolist(),
                               "fair_tat_cfps": self._cfps.tolist()}
        if self.keep == "trained":
            return log
        passed = True
        if self.keep == "fawa":
            worst = float(ctx.validate(model)["robust_worst"])
            passed = fawa_passes(worst, self.threshold)
            log["fair_tat_val_robust_worst"] = worst
        if passed:
            self._average = fawa_update(self._average, model.state_dict(), self.decay)
            self._average_updates += 1
        log["fair_tat_average_updates"] = self._average_updates
        return log

    def kept_weights(self, model: nn.Module) -> dict[str, Tensor] | None:
        return self._average

    def state_dict(self) -> dict[str, Any]:
        return {"share": self._share, "cfps": self._cfps, "average": self._average,
                "average_updates": self._average_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._share = state.get("share")
        self._cfps = state.get("cfps")
        self._average = state.get("average")
        self._average_updates = int(state.get("average_updates", 0))
