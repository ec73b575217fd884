"""FRL's pure math (multiplier updates, class weights, radius multipliers, the weighted TRADES
loss), shared by its three variants in methods/frl.py (a helper module: `_` keeps it from
registering as a method)."""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.core.losses import kl_per_example, weighted_mean

MULTIPLIERS = ("phi_nat", "phi_bndy", "phi_rm")
EPS_MULT_FLOOR = 0.98


def violations(err: Tensor, tau: float) -> Tensor:
    """Per-class constraint violation err(i) - mean(err) - tau."""
    return err - err.mean() - tau


def project(phi: Tensor, lim: float) -> Tensor:
    """Clip at 0; if the sum then exceeds `lim`, rescale to sum exactly `lim`."""
    phi = phi.clamp(min=0)
    total = phi.sum()
    return lim * phi / total if total > lim else phi


def update_multipliers(phi: dict[str, Tensor], g_nat: Tensor, g_bndy: Tensor, *, a1: float,
                       a2: float, lim: float, active: Collection[str]) -> dict[str, Tensor]:
    """One multiplier update; only the names in `active` move (the others are copied).

    phi_nat += a1 g_nat and phi_bndy += 2 a1 g_bndy, both projected; phi_rm += a2 g_bndy, not
    projected.
    """
    steps = {"phi_nat": a1 * g_nat, "phi_bndy": 2 * a1 * g_bndy, "phi_rm": a2 * g_bndy}
    out = {}
    for key in MULTIPLIERS:
        value = phi[key]
        if key in active:
            value = value + steps[key]
            value = value if key == "phi_rm" else project(value, lim)
        out[key] = value.clone()
    return out


def class_weights(phi: Tensor) -> Tensor:
    """w(i) = 1/C + phi(i) - sum(phi)/C: sums to 1; positive when phi >= 0 and sum(phi) < 1."""
    c = len(phi)
    return 1.0 / c + phi - phi.sum() / c


def radius_multipliers(phi_rm: Tensor, cap: float) -> Tensor:
    """m(i) = clamp(exp(2 phi_rm(i)), 0.98, cap)."""
    return torch.exp(2 * phi_rm).clamp(EPS_MULT_FLOOR, cap)


def weighted_trades_loss(clean_logits: Tensor, adv_logits: Tensor, y: Tensor, w_nat: Tensor,
                         w_bndy: Tensor, beta: float) -> Tensor:
    """sum w_nat(y) CE / sum w_nat(y) + beta * sum w_bndy(y) KL / sum w_bndy(y) over the batch;
    `w_nat`, `w_bndy` are per-class vectors, KL(f(x) || f(x_adv)) is summed over classes."""
    ce = F.cross_entropy(clean_logits, y, reduction="none")
    kl = kl_per_example(clean_logits, adv_logits)
    return weighted_mean(ce, w_nat[y]) + beta * weighted_mean(kl, w_bndy[y])


def a1_at(a1: float, epochs_since_begin: int, halve_every: int) -> float:
    """a1 halved once per completed `halve_every` fine-tuning epochs (0: never)."""
    if halve_every <= 0:
        return a1
    return a1 * 0.5 ** (max(epochs_since_begin, 0) // halve_every)


def derived_state(phi: dict[str, Tensor], cap: float) -> dict[str, Tensor]:
    """Multipliers plus the class weights and radius multipliers they imply."""
    return {**phi, "w_nat": class_weights(phi["phi_nat"]),
            "w_bndy": class_weights(phi["phi_bndy"]),
            "eps_mult": radius_multipliers(phi["phi_rm"], cap)}
