"""FRL: Fair Robust Learning (Xu, Liu, Li, Jain, Tang, ICML 2021), `frl_rw`, `frl_rm`, `frl_rwrm`.

Paper: "To be Robust or to be Fair: Towards Fairness in Adversarial Training".
Official code: github.com/hannxu123/fair_robust (frlrw.py, frlrm.py, frlrmrw.py, utils_frl*.py).

A fine-tuning method: it starts from the same protocol's `trades` run at epoch
round(80/120 * epochs) (or `begin_epoch`) and trains at the protocol's constant `finetune_lr`.
Once per epoch (in `on_epoch_start`, counted as training cost) it estimates on the validation
split (never the test set), with PGD-20 (CE, uniform start, alpha = eps/4), the per-class natural
error nat_err(i) and boundary error bndy_err(i) (correct on x, wrong on x_adv), then:

    g_nat  = nat_err  - mean(nat_err)  - tau1        g_bndy = bndy_err - mean(bndy_err) - tau2
    phi_nat  <- P(phi_nat  + a1 * g_nat)             phi_bndy <- P(phi_bndy + 2 * a1 * g_bndy)
    phi_rm   <- phi_rm + a2 * g_bndy                 (P: clip at 0, rescale to sum `lim`)
    w(i) = 1/C + phi(i) - sum(phi)/C                 m(i) = clamp(exp(2 phi_rm(i)), 0.98, cap)

and trains the epoch with weighted TRADES: x_adv = KL-PGD-K from x + 0.001 N(0, 1) with
per-example radius eps * m(y) and step alpha_frac * eps * m(y);
loss = sum w_nat(y) CE / sum w_nat(y) + beta * sum w_bndy(y) KL / sum w_bndy(y).
`frl_rw` updates phi_nat and phi_bndy (radius stays eps), `frl_rm` phi_nat and phi_rm (phi_bndy
stays 0, so KL weights stay uniform), `frl_rwrm` all three. a1 is halved every `a1_halve_every`
fine-tuning epochs (a2 is not).

Defaults (the FRL paper and official HEAD): rw: tau1 = tau2 = 0.1, a1 = 0.05, a2 = 0.1, cap 2.5;
rwrm: tau1 = tau2 = 0.07, a1 = 0.05, a2 = 0.2, cap 3.0; all: lim 0.5, beta 1.5, halving every 40.
rm: no separate rm defaults are given; we take rw's (tau 0.1, a1 0.05, a2 0.1, cap 2.5, which
match the official frlrm.py / utils_frl1.py) and the shared lim 0.5 / beta 1.5 (official
frlrm.py's argparse defaults are lim 0.3, beta 1.0).

Training step size: as the official HEAD, one step for the whole batch, alpha = alpha_frac *
max_i(eps_i) (`step_rule="batch_max"`, alpha_frac 0.25: max(eps_i) / 4); `step_rule=
"per_example"` gives alpha_i = alpha_frac * eps_i, and `alpha_frac=None` the protocol's alpha *
m(i). `frl_rw` has m = 1, so alpha = eps / 4 (on CIFAR that is the protocol's 2/255; on FMNIST
eps/4 = 0.025 while the warm-start TRADES run used the protocol's 0.01). The CE and KL terms are
normalised by their own weight sums, as official HEAD does.

Deviations from the official code:
- Halving: official halves a1 before 1-based epochs 40, 80, ...; here fine-tuning epochs
  0..39 use a1, 40..79 a1/2, ... (epochs counted from the warm start's begin epoch).
- The class averages of the errors are means over classes (official: overall error on the
  validation set; identical on the class-balanced split).
- Fine-tuning length and lr come from the protocol (official HEAD: 40 epochs at lr 0.001 from a
  hot-start checkpoint; `--recipe official` runs that, docs/recipes.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.attacks import pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext, WarmStartMethod, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import Choice
from methods._frl_math import (
    EPS_MULT_FLOOR,
    MULTIPLIERS,
    a1_at,
    derived_state,
    update_multipliers,
    violations,
    weighted_trades_loss,
)

STATE_KEYS = (*MULTIPLIERS, "w_nat", "w_bndy", "eps_mult")
# the official recipes' shared settings (each variant's docstring states them)
HOT_START_RECIPE = {"model": "preact_resnet18", "batch_size": 128, "momentum": 0.9,
                    "weight_decay": 0.0005, "finetune_lr": 0.001, "eps": 8 / 255,
                    "alpha": 2 / 255, "train_steps": 10}
HOT_START = ("the official run fine-tunes a released hot-start PreAct ResNet-18 whose training is "
             "not in the repository: here the trades base trains under the preset's schedule and "
             "FRL starts at its epoch 80/120")


def hot_start_recipe(source: str, lr_drops_skipped: bool = False, **hparams: Any) -> Recipe:
    """An official FRL recipe: a fine-tune of the hot start (the variants share its base)."""
    drops = "; the official lr drops x0.1 at fine-tune epochs 40 and 80, here it stays 0.001"
    return Recipe(source=source, protocol=HOT_START_RECIPE, hparams=hparams, family="frl",
                  deviations=HOT_START + (drops if lr_drops_skipped else ""))


def class_errors(model: nn.Module, loader: TensorLoader, num_classes: int, *, eps: float,
                 alpha: float, steps: int) -> tuple[Tensor, Tensor]:
    """Per-class natural error and boundary error (clean-correct, PGD-wrong) on `loader`,
    PGD on CE from a uniform start, model in eval mode (mode restored). float64 on CPU."""
    was_training = model.training
    model.eval()
    n = torch.zeros(num_classes, dtype=torch.float64)
    nat = torch.zeros(num_classes, dtype=torch.float64)
    bndy = torch.zeros(num_classes, dtype=torch.float64)
    try:
        for x, y in loader:
            with torch.no_grad():
                clean_ok = model(x).argmax(1) == y
            x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, loss="ce",
                        start="uniform").x_adv
            with torch.no_grad():
                adv_ok = model(x_adv).argmax(1) == y
            n += torch.bincount(y, minlength=num_classes).cpu()
            nat += torch.bincount(y[~clean_ok], minlength=num_classes).cpu()
            bndy += torch.bincount(y[clean_ok & ~adv_ok], minlength=num_classes).cpu()
    finally:
        model.train(was_training)
    n = n.clamp(min=1)
    return nat / n, bndy / n


def step_sizes(eps: Tensor, m: Tensor, alpha_frac: float | None, rule: str,
               protocol_alpha: float) -> Tensor | float:
    """The attack step: alpha_frac * max(eps_i) for the batch (official HEAD, "batch_max"),
    alpha_frac * eps_i per example ("per_example"), or the protocol's alpha * m(i) (None)."""
    if alpha_frac is None:
        return protocol_alpha * m
    return alpha_frac * (eps.max() if rule == "batch_max" else eps)


# --- the methods ----------------------------------------------------------------------------
@dataclass
class FRL(WarmStartMethod):
    """Shared FRL logic; subclasses choose the defaults and which multipliers update."""

    warm_start_base: ClassVar[str | None] = "trades"
    begin_fraction: ClassVar[float] = 80 / 120
    finetunes: ClassVar[bool] = True
    updates: ClassVar[tuple[str, ...]] = ()  # which of MULTIPLIERS move; set by each variant
    # tau1 / tau2: the fairness constraints' tolerances, the paper's knobs
    search_space = {"tau1": Choice((0.03, 0.05, 0.07, 0.1)),
                    "tau2": Choice((0.03, 0.05, 0.07, 0.1))}

    tau1: float = setting(0.1, ge=0, le=1)
    tau2: float = setting(0.1, ge=0, le=1)
    a1: float = setting(0.05, ge=0)
    a2: float = setting(0.1, ge=0)
    cap: float = setting(2.5, ge=EPS_MULT_FLOOR)
    lim: float = setting(0.5, ge=0, lt=1)      # < 1 keeps every class weight positive
    beta: float = setting(1.5, ge=0)
    a1_halve_every: int = setting(40, ge=0)
    est_steps: int = setting(20, ge=1)         # PGD steps of the per-epoch validation estimate
    alpha_frac: float | None = setting(0.25, gt=0)  # step = alpha_frac * eps; None: alpha m(i)
    step_rule: str = setting("batch_max", choices=("batch_max", "per_example"))

    def __post_init__(self) -> None:
        self._state: dict[str, Tensor] = {}
        self._cache: dict[str, Tensor] = {}

    # state ------------------------------------------------------------------------------
    def _ensure_state(self, num_classes: int) -> None:
        if not self._state:
            zero = torch.zeros(num_classes, dtype=torch.float64)
            self._set_state(derived_state({k: zero.clone() for k in MULTIPLIERS}, self.cap))

    def _set_state(self, state: dict[str, Tensor]) -> None:
        self._state = {k: state[k].detach().to("cpu", torch.float64).clone() for k in STATE_KEYS}
        self._cache = {}

    def state_dict(self) -> dict[str, Any]:
        return {k: v.clone() for k, v in self._state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._set_state(state)
        else:
            self._state, self._cache = {}, {}

    def _on(self, like: Tensor) -> dict[str, Tensor]:
        """State vectors on the batch's device (cached until the state changes)."""
        cached = self._cache.get("w_nat")
        if cached is None or cached.device != like.device or cached.dtype != like.dtype:
            self._cache = {k: self._state[k].to(like.device, like.dtype)
                           for k in ("w_nat", "w_bndy", "eps_mult")}
        return self._cache

    # hooks ------------------------------------------------------------------------------
    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        """Estimate per-class errors on the validation split and update the multipliers."""
        self._ensure_state(ctx.num_classes)
        nat_err, bndy_err = class_errors(model, ctx.val_loader, ctx.num_classes, eps=ctx.eps,
                                         alpha=ctx.eps / 4, steps=self.est_steps)
        a1 = a1_at(self.a1, ctx.epoch - self.begin(ctx.protocol), self.a1_halve_every)
        phi = update_multipliers({k: self._state[k] for k in MULTIPLIERS},
                                 violations(nat_err, self.tau1), violations(bndy_err, self.tau2),
                                 a1=a1, a2=self.a2, lim=self.lim, active=self.updates)
        self._set_state(derived_state(phi, self.cap))
        return {"frl_a1": a1, "val_nat_err": nat_err.tolist(), "val_bndy_err": bndy_err.tolist(),
                **{k: v.tolist() for k, v in self._state.items()}}

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        self._ensure_state(ctx.num_classes)
        s = self._on(x)
        m = s["eps_mult"][y]
        eps = ctx.eps * m
        alpha = step_sizes(eps, m, self.alpha_frac, self.step_rule, ctx.alpha)
        x_adv = ctx.attack(model, x, y, loss="kl", start="trades", eps=eps, alpha=alpha).x_adv
        return weighted_trades_loss(model(x), model(x_adv), y, s["w_nat"], s["w_bndy"],
                                    self.beta)


@register_method("frl_rw")
class FrlRW(FRL):
    """FRL reweight: phi_nat and phi_bndy move, radius fixed at eps.

    Official recipe, cifar10 (hannxu123/fair_robust@a80547d, frlrw.py and utils_frl.py argparse
        defaults):
        model preact_resnet18; batch_size 128; momentum 0.9; weight_decay 0.0005; finetune_lr
        0.001; eps 8/255; alpha 2/255; train_steps 10; finetune_epochs 40; beta 1.5; tau1 0.1;
        tau2 0.1; a1 0.05; lim 0.5
    """

    title = "FRL-RW"
    recipes = {"cifar10": hot_start_recipe(
        "hannxu123/fair_robust@a80547d, frlrw.py and utils_frl.py argparse defaults",
        finetune_epochs=40, beta=1.5, tau1=0.1, tau2=0.1, a1=0.05, lim=0.5)}

    updates = ("phi_nat", "phi_bndy")


@register_method("frl_rm")
class FrlRM(FRL):
    """FRL remargin: phi_nat and phi_rm move, phi_bndy stays 0 (rw's defaults).

    Official recipe, cifar10 (hannxu123/fair_robust@18d1177, frlrm.py and utils_frl1.py argparse
        defaults (removed from the repository at 674a1df)):
        model preact_resnet18; batch_size 128; momentum 0.9; weight_decay 0.0005; finetune_lr
        0.001; eps 8/255; alpha 2/255; train_steps 10; finetune_epochs 120; beta 1; tau1 0.1;
        tau2 0.1; a1 0.05; a2 0.1; lim 0.3; cap 2.5
    """

    title = "FRL-RM"
    recipes = {"cifar10": hot_start_recipe(
        "hannxu123/fair_robust@18d1177, frlrm.py and utils_frl1.py argparse defaults (removed "
        "from the repository at 674a1df)", lr_drops_skipped=True,
        finetune_epochs=120, beta=1.0, tau1=0.1, tau2=0.1, a1=0.05, a2=0.1, lim=0.3, cap=2.5)}

    updates = ("phi_nat", "phi_rm")


@register_method("frl_rwrm")
class FrlRWRM(FRL):
    """FRL reweight + remargin: all three multipliers move.

    Official recipe, cifar10 (hannxu123/fair_robust@a80547d, frlrmrw.py and utils_frl2.py argparse
        defaults):
        model preact_resnet18; batch_size 128; momentum 0.9; weight_decay 0.0005; finetune_lr
        0.001; eps 8/255; alpha 2/255; train_steps 10; finetune_epochs 40; beta 1.5; tau1 0.07;
        tau2 0.07; a1 0.05; a2 0.2; lim 0.5; cap 3
    """

    title = "FRL-RWRM"
    recipes = {"cifar10": hot_start_recipe(
        "hannxu123/fair_robust@a80547d, frlrmrw.py and utils_frl2.py argparse defaults",
        finetune_epochs=40, beta=1.5, tau1=0.07, tau2=0.07, a1=0.05, a2=0.2, lim=0.5, cap=3.0)}

    updates = ("phi_nat", "phi_bndy", "phi_rm")
    tau1: float = 0.07
    tau2: float = 0.07
    a2: float = 0.2
    cap: float = 3.0
