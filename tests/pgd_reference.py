"""FROZEN REFERENCE: the pre-refactor `pgd` (benchmark/attacks.py at e834993), kept only to
prove that the refactored `benchmark.core.attacks.pgd` with its rules (HAM's drop in
methods/ham.py, BAT's stops in methods/bat.py, the tests' tracking) gives identical iterates,
bookkeeping and pass counts (tests/test_pgd_reference.py). Do not use it anywhere else and do
not edit it: only its import path may change with the package layout.

Its original module docstring:

L-inf PGD with sign-gradient steps; start uniform in the eps ball (clipped to [0, 1]) or
x + 0.001 N(0, 1) (TRADES: as in the official code, the first gradient is taken at this unclipped
point, and every step then projects to the eps ball and [0, 1]);
loss CE, KL to the clean softmax (TRADES) or the CW margin; scalar or per-example eps and alpha;
optional tracking of the first step at which each example is misclassified, optional early
dropping of examples still correctly classified after M steps (HAM), and optional early stopping
at misclassification (FAT-style: the first misclassified iterate, or the last one still correctly
classified; BAT). The attack always runs with the model in eval mode and restores the model's
mode afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.losses import cw_margin, kl_per_example

Loss = Literal["ce", "kl", "cw"]
Start = Literal["uniform", "trades", "trades_clipped", "none"]
Stop = Literal["first_miss", "before_miss"]


@dataclass
class PGDResult:
    """x_adv; first_miss[i] = first iterate index (0 = the start point) at which example i was
    misclassified, steps + 1 if never seen misclassified (None unless `track` or `drop_after`
    asked for it); kept[i] False if dropped early."""

    x_adv: Tensor
    first_miss: Tensor | None
    kept: Tensor
    stopped_at: Tensor | None = None   # with `stop`: the iterate index returned per example


def _per_example(value: float | Tensor, x: Tensor) -> Tensor:
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    return value.reshape(-1, *([1] * (x.dim() - 1))) if value.dim() else value


def _objective(model: nn.Module, x_adv: Tensor, y: Tensor, loss: Loss,
               clean_probs_logits: Tensor | None) -> tuple[Tensor, Tensor]:
    logits = model(x_adv)
    if loss == "ce":
        value = F.cross_entropy(logits, y, reduction="sum")
    elif loss == "kl":
        value = kl_per_example(clean_probs_logits, logits).sum()
    else:
        value = cw_margin(logits, y).sum()
    return value, logits.detach()


def pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float | Tensor, alpha: float | Tensor,
        steps: int, loss: Loss = "ce", start: Start = "uniform", drop_after: int | None = None,
        track: bool = False, stop: Stop | None = None, patience: int = 0) -> PGDResult:
    """Run L-inf PGD and return the adversarial batch (see module docstring).

    drop_after=M: after M steps, examples correctly classified at that iterate (the official
    HAM code's check) stop being attacked (no more forward/backward passes) and are returned as
    they were at step M, with kept=False. track=True spends one extra forward pass to check the
    final iterate too.

    stop="first_miss": an example stops being attacked at the first iterate at which it is seen
    misclassified for the (patience + 1)-th time (FAT's early stop with tau = patience) and is
    returned as that iterate. stop="before_miss": an example stops at its first misclassified
    iterate and is returned as the iterate before it (the start point if the start is already
    misclassified). Iterates 0..steps-1 are checked (on the forward pass the gradient step needs
    anyway); an example never stopped is returned as the last iterate. `stopped_at` holds the
    index of the iterate returned (steps if never stopped).
    """
    was_training = model.training
    model.eval()
    try:
        eps_t, alpha_t = _per_example(eps, x), _per_example(alpha, x)
        clean_logits = None
        if loss == "kl":
            with torch.no_grad():
                clean_logits = model(x)
        if start == "uniform":
            x_adv = x + (torch.rand_like(x) * 2 - 1) * eps_t
        elif start in ("trades", "trades_clipped"):
            x_adv = x + 0.001 * torch.randn_like(x)
        else:
            x_adv = x.clone()
        if start == "trades":  # the official TRADES order: first gradient at the raw start
            x_adv = x_adv.detach()
        else:
            x_adv = torch.min(torch.max(x_adv, x - eps_t), x + eps_t).clamp(0, 1).detach()
        if drop_after is None and not track and stop is None:
            x_adv = _plain_steps(model, x, y, x_adv, eps_t, alpha_t, steps, loss, clean_logits)
            return PGDResult(x_adv, None, torch.ones(len(y), dtype=torch.bool, device=x.device))

        n = len(y)
        first_miss = torch.full((n,), steps + 1, dtype=torch.long, device=x.device)
        kept = torch.ones(n, dtype=torch.bool, device=x.device)
        idx = torch.arange(n, device=x.device)  # examples still being attacked
        misses = torch.zeros(n, dtype=torch.long, device=x.device)
        stopped_at = torch.full((n,), steps, dtype=torch.long, device=x.device)
        previous = x_adv.clone() if stop == "before_miss" else None

        def note_misses(t: int, logits: Tensor) -> None:
            wrong = logits.argmax(1) != y[idx]
            first_miss[idx] = torch.where(wrong & (first_miss[idx] > steps), t, first_miss[idx])

        for t in range(steps + 1):
            if t == drop_after or (t == steps and track):
                with torch.no_grad():  # one forward pass over the examples still attacked
                    check = model(x_adv[idx])
                note_misses(t, check)
                wrong_now = check.argmax(1) != y[idx]
                if t == drop_after:  # HAM's official rule: misclassified at iterate M = hard
                    hard = wrong_now
                    kept[idx[~hard]] = False
                    idx = idx[hard]
            if t == steps or len(idx) == 0:
                break
            sub = x_adv[idx].requires_grad_(True)
            value, logits = _objective(model, sub, y[idx], loss,
                                       None if clean_logits is None else clean_logits[idx])
            note_misses(t, logits)
            (grad,) = torch.autograd.grad(value, sub)
            go = torch.ones(len(idx), dtype=torch.bool, device=x.device)
            if stop is not None:
                wrong = logits.argmax(1) != y[idx]
                misses[idx] += wrong.long()
                go = ~(wrong & (misses[idx] > (patience if stop == "first_miss" else 0)))
                done = idx[~go]
                stopped_at[done] = t if stop == "first_miss" else max(t - 1, 0)
                if previous is not None:
                    x_adv[done] = previous[done]
                    previous[idx[go]] = x_adv[idx[go]]
            e = eps_t[idx] if eps_t.dim() else eps_t
            a = alpha_t[idx] if alpha_t.dim() else alpha_t
            base = x[idx]
            stepped = sub.detach() + a * grad.sign()
            moved = torch.min(torch.max(stepped, base - e), base + e).clamp(0, 1)
            x_adv[idx[go]] = moved[go]
            idx = idx[go]
        return PGDResult(x_adv.detach(), first_miss, kept, stopped_at if stop else None)
    finally:
        model.train(was_training)


def _plain_steps(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, eps: Tensor,
                 alpha: Tensor, steps: int, loss: Loss, clean_logits: Tensor | None) -> Tensor:
    """The fast path: every example takes every step, no bookkeeping (same iterates as the
    general loop, which indexes the examples still attacked and tracks misclassification)."""
    for _ in range(steps):
        x_adv.requires_grad_(True)
        value, _ = _objective(model, x_adv, y, loss, clean_logits)
        (grad,) = torch.autograd.grad(value, x_adv)
        stepped = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(stepped, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()
