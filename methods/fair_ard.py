"""Fair-ARD: Fair Adversarial Robustness Distillation (Yue et al., NeurIPS 2023), `fair_ard`.

Paper: Yue, Mou, Wang, Zhao, "Revisiting Adversarial Robustness Distillation from the
Perspective of Robust Fairness", NeurIPS 2023.
Official code: github.com/NISP-official/Fair-ARD (read at 910c8cd: Fair-ARD.py, README,
models/wideresnet.py; the ARD variant, not Fair-IAD / Fair-RSLAD / Fair-MTARD).

A student learns from a frozen robust teacher (`DistillMethod`: the protocol's teacher_model
trained by `trades`, or `teacher_file`). Per batch:
- x_adv = PGD-K on the student's CE from a uniform start (protocol eps / alpha / K). Kappa_i =
  how many of the iterates x_0 .. x_{K-1} (the start and every point a step is taken from) the
  student classifies correctly: counted by the attack rule `CountCorrect` on the logits of the
  forward pass each step needs anyway (no extra passes).
- loss = kd_weight T^2 mean_i w_{y_i} KL(softmax(t_i / T) || softmax(s_i / T)) / C
  + (1 - kd_weight) mean_i w_{y_i} CE(f(x_i), y_i), with t the teacher's clean logits (eval
  mode), s the student's train-mode adversarial logits; the / C is the official
  `nn.KLDivLoss()` default 'mean' over the C classes of one example, so with the defaults the
  loss is 90 mean_i w KL_i (C = 10).
- A train-mode clean forward of the student follows the adversarial one (official order); with
  kd_weight 1 its CE has weight 0, so it only moves BatchNorm statistics (`clean_bn_forward`).
After every epoch: Kappa_k = (sum of Kappa_i over the epoch's class-k examples) / (N / C) with N
the examples of the epoch (official: the training set size, the same with every batch kept;
on an imbalanced set Kappa_k mixes class size and robustness, as official); r_k =
(Kappa_k + 1e-5)^-beta and w = clamp(C r / sum r, 5/6, 5/2), not renormalised after the clamp.
Epoch 0 trains with w = 1. Weights and last Kappa are method state (checkpointed).
Scale: the loss's gradient on the student's logits is (T / C)(softmax(s/T) - softmax(t/T)),
about (s - t) / C^2 while the logits are small next to T, far below a CE's (the lr_factor of
`fairbench tune` absorbs a scale).

Defaults (official argparse and README): beta 2, T 30, kd_weight (official --alpha) 1, clamp
[5/6, 5/2]. A scratch script ran the official weight_assign, AttackPGD (train mode) and the
per-example loss loop (taken from Fair-ARD.py by ast) on a tiny BatchNorm CNN against this file
(`train_mode_attack`, the same start): Kappa, iterates, gradients and BatchNorm running
statistics identical, weights within 5e-7 (official float32), loss values to float32 rounding
(both within 1e-4 relative of a float64 reference); tests/test_fair_ard.py keeps hand checks.

Deviations from the official code:
- The attack runs in eval mode, so Kappa is counted on eval-mode predictions and BatchNorm does
  not see the iterates (official: train mode: batch statistics, and the K attack forwards also
  move the running statistics): `train_mode_attack=true` runs it in train mode.
- The uniform start is clipped to [0, 1] before the first gradient (official: unclipped).
- Checkpoints are selected on the validation split (official: every epoch saved, no rule).
- The teacher is the harness's `trades` run of the protocol's teacher_model (official: a
  released WideResNet-34-10 checkpoint whose training the repository does not document).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.errors import UserError
from benchmark.common.settings import setting
from benchmark.core.attacks import Iterate, PGDRule
from benchmark.core.losses import kl_per_example
from benchmark.core.method import DistillMethod, TrainContext, register_method
from benchmark.core.protocol import Protocol
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange

KAPPA_FLOOR = 1e-5  # official: 1 / (Kappa + 1e-5)


# --- pure math ------------------------------------------------------------------------------
def class_kappa(kappa_sum: Tensor, seen: float) -> Tensor:
    """Kappa_k = (class k's summed correct-iterate counts) / (N / C), float64."""
    c = kappa_sum.numel()
    return kappa_sum.double() / (max(seen, 1.0) / c)


def kappa_weights(kappa: Tensor, beta: float, low: float = 5 / 6, high: float = 5 / 2
                  ) -> Tensor:
    """w = clamp(C r / sum r, low, high) with r = (Kappa + 1e-5)^-beta (float64)."""
    r = (kappa.double() + KAPPA_FLOOR) ** (-beta)
    return (r * (kappa.numel() / r.sum())).clamp(min=low, max=high)


def distill_loss(student_adv: Tensor, teacher: Tensor, y: Tensor, w: Tensor, temperature: float,
                 kd_weight: float, student_clean: Tensor | None = None) -> Tensor:
    """kd_weight T^2 mean(w KL(t/T || s/T) / C) + (1 - kd_weight) mean(w CE(clean, y)), `w`
    per example (the CE term needs `student_clean` unless kd_weight is 1)."""
    s, t = student_adv.float(), teacher.float()
    kl = kl_per_example(t / temperature, s / temperature) / s.shape[1]
    loss = kd_weight * temperature ** 2 * (w * kl).mean()
    if kd_weight != 1:
        if student_clean is None:
            raise ValueError("the CE term needs the student's clean logits")
        ce = F.cross_entropy(student_clean.float(), y, reduction="none")
        loss = loss + (1 - kd_weight) * (w * ce).mean()
    return loss


# --- attack hooks ---------------------------------------------------------------------------
class CountCorrect(PGDRule):
    """Counts, per example, the iterates 0..K-1 the model classifies correctly (from each
    gradient step's own forward pass; no example is stopped): `correct` after the call."""

    def begin(self, n: int, steps: int, device: torch.device) -> None:
        self.correct = torch.zeros(n, dtype=torch.long, device=device)

    def visit(self, it: Iterate) -> Tensor:
        self.correct[it.idx] += (~it.wrong).long()
        return torch.ones(len(it.idx), dtype=torch.bool, device=it.idx.device)


class KeepMode(nn.Module):
    """The model as the attack sees it, ignoring the attack's eval()/train() calls (so a model
    in train mode is attacked in train mode, as the official code does)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)

    def train(self, mode: bool = True) -> KeepMode:
        return self


# --- the method -----------------------------------------------------------------------------
@register_method("fair_ard")
class FairArd(DistillMethod):
    """ARD (adversarial student, clean teacher, KL at temperature T) with per-class weights from
    the previous epoch's mean number of correctly classified PGD iterates:
    loss = kd_weight T^2 mean_i w_{y_i} KL(t_i / T || s_i / T) / C + (1 - kd_weight) mean_i
    w_{y_i} CE(f(x_i), y_i).

    Official recipe, cifar10 (NISP-official/Fair-ARD@910c8cd, the README command (--teacher_path
        PATH --beta 2.0) over Fair-ARD.py argparse defaults):
        model resnet18; epochs 200; batch_size 128; lr 0.1; lr_milestones 100:0.1; momentum 0.9;
        nesterov true; weight_decay 0.0002; eps 8/255; alpha 2/255; train_steps 10; beta 2;
        temperature 30; kd_weight 1
    Deviations: the teacher model is the preset's (wrn_34_10 on CIFAR, the official WideResNet
    default depth 34, width 10; a recipe does not set it), trained here as trades[teacher] under
    this recipe's schedule (official: a released checkpoint whose training is not documented);
    the official schedule's second drop at epoch 150 multiplies the initial lr again (a local
    copy), so the lr stays 0.01 from epoch 100 on.
    """

    title = "Fair-ARD"
    recipes = {
        "cifar10": Recipe(
            source=("NISP-official/Fair-ARD@910c8cd, the README command (--teacher_path PATH "
                    "--beta 2.0) over Fair-ARD.py argparse defaults"),
            protocol={"model": "resnet18", "epochs": 200, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((100, 0.1),), "momentum": 0.9, "nesterov": True,
                      "weight_decay": 0.0002, "eps": 8 / 255, "alpha": 2 / 255,
                      "train_steps": 10},
            hparams={"beta": 2, "temperature": 30, "kd_weight": 1},
            deviations=("the teacher model is the preset's (wrn_34_10 on CIFAR, the official "
                        "WideResNet default depth 34, width 10; a recipe does not set it), "
                        "trained here as trades[teacher] under this recipe's schedule (official: "
                        "a released checkpoint whose training is not documented); the official "
                        "schedule's second drop at epoch 150 multiplies the initial lr again (a "
                        "local copy), so the lr stays 0.01 from epoch 100 on"),
        ),
    }
    search_space = {"beta": LogRange(0.5, 8.0)}  # how sharply hard classes are up-weighted

    beta: float = setting(2.0, ge=0)
    temperature: float = setting(30.0, gt=0)         # official --temp
    kd_weight: float = setting(1.0, ge=0, le=1)      # official --alpha
    weight_min: float = setting(5 / 6, ge=0)         # the clamp (official: hard-coded)
    weight_max: float = setting(5 / 2, gt=0)
    clean_bn_forward: bool = True                    # the official (unused) clean forward
    train_mode_attack: bool = False                  # official: true

    def __post_init__(self) -> None:
        self._weights: Tensor | None = None   # w_k of this epoch (None: epoch 0, all ones)
        self._kappa: Tensor | None = None     # Kappa_k of the last finished epoch
        self._kappa_sum = torch.zeros(0, dtype=torch.float64)
        self._seen = 0.0

    def validate(self, protocol: Protocol) -> None:
        if self.weight_min > self.weight_max:
            raise UserError(f"fair_ard.weight_min={self.weight_min} must be <= weight_max="
                            f"{self.weight_max}")

    def class_weights(self, num_classes: int) -> Tensor:
        """The weights this epoch trains with (ones before the first epoch has ended)."""
        if self._weights is None:
            return torch.ones(num_classes, dtype=torch.float64)
        return self._weights

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        teacher = ctx.teacher
        if teacher is None:
            raise RuntimeError("fair_ard needs ctx.teacher (a DistillMethod's frozen teacher)")
        count = CountCorrect()
        attacked = KeepMode(model) if self.train_mode_attack else model
        x_adv = ctx.attack(attacked, x, y, loss="ce", start="uniform", rule=count).x_adv
        self._add_counts(count.correct, y, ctx.num_classes)
        student_adv = model(x_adv)
        with torch.no_grad():
            target = teacher(x)
        clean = None
        if self.kd_weight != 1:
            clean = model(x)
        elif self.clean_bn_forward:  # weight 0 in the loss: only BatchNorm statistics move
            with torch.no_grad():
                model(x)
        w = self.class_weights(ctx.num_classes).to(x.device, torch.float32)[y]
        return distill_loss(student_adv, target, y, w, self.temperature, self.kd_weight, clean)

    def _add_counts(self, correct: Tensor, y: Tensor, num_classes: int) -> None:
        if self._kappa_sum.numel() != num_classes:
            self._kappa_sum = torch.zeros(num_classes, dtype=torch.float64)
        self._kappa_sum += torch.bincount(y.cpu(), weights=correct.cpu().double(),
                                          minlength=num_classes)
        self._seen += len(y)

    # hooks ------------------------------------------------------------------------------
    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._kappa_sum = torch.zeros(ctx.num_classes, dtype=torch.float64)
        self._seen = 0.0
        return {"fair_ard_weights": self.class_weights(ctx.num_classes).tolist()}

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        self._kappa = class_kappa(self._kappa_sum, self._seen)
        self._weights = kappa_weights(self._kappa, self.beta, self.weight_min, self.weight_max)
        return {"fair_ard_kappa": self._kappa.tolist(),
                "fair_ard_next_weights": self._weights.tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self._weights, "kappa": self._kappa}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._weights = state.get("weights")
        self._kappa = state.get("kappa")
