"""The one PGD primitive every method and the evaluator use, its rule hook, and the passes counter.

L-inf PGD with sign-gradient steps; start uniform in the eps ball (clipped to [0, 1]) or
x + 0.001 N(0, 1) (TRADES: as in the official code, the first gradient is taken at this unclipped
point, and every step then projects to the eps ball and [0, 1]);
loss CE, KL to the clean softmax (TRADES) or the CW margin; scalar or per-example eps and alpha.
The attack always runs with the model in eval mode and restores the model's mode afterwards.

A method that needs per-example control over the attack passes a `PGDRule`: it sees each
iterate's logits of the examples still attacked and says which of them go on; examples it stops
take no more forward/backward passes and are returned as that iterate (or, with
`returns_previous`, the one before). The rule keeps its own per-example records (read them from
the rule object after the call). The rules in use: HAM's early drop (methods/ham.py, `DropEasy`),
BAT's early stops (methods/bat.py, `LastClean`, `FirstAdversarial`). Without a rule, every
example takes every step on a fast path with no indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.losses import cw_margin, kl_per_example

Loss = Literal["ce", "kl", "cw"]
Start = Literal["uniform", "trades", "trades_clipped", "none"]


@dataclass
class PGDResult:
    """The adversarial batch (what a rule recorded stays on the rule object)."""

    x_adv: Tensor


@dataclass
class Iterate:
    """What a rule sees at iterate t (0 = the start point, `steps` = the last one)."""

    t: int
    steps: int
    idx: Tensor      # indices into the batch of the examples still attacked
    logits: Tensor   # their logits at iterate t (detached)
    y: Tensor        # their labels
    checked: bool    # the logits come from a check forward the rule asked for

    @property
    def wrong(self) -> Tensor:
        """Which of them iterate t misclassifies."""
        return self.logits.argmax(1) != self.y


class PGDRule:
    """Per-example control of `pgd`; this base attacks everyone to the end and records nothing.

    `begin` is called once with the batch size. For t = 0..steps-1, `visit` is called once per
    iterate, with the logits of the forward pass the gradient step at t needs anyway, after that
    step's backward pass; if `check_at(t)` is true it is instead called before that step, with
    the logits of one extra no-grad forward pass (so an example stopped there takes no step-t
    passes; at t = steps, where no step is taken, this is the only way to see the iterate).
    `visit` returns a bool mask over `it.idx`: the examples that go on. Those it stops are
    returned as iterate t, or as iterate t - 1 (the start point at t = 0) if `returns_previous`.
    """

    returns_previous: ClassVar[bool] = False

    def begin(self, n: int, steps: int, device: torch.device) -> None:
        """Allocate per-example records for a batch of n examples."""

    def check_at(self, t: int) -> bool:
        """Whether to spend a check forward on iterate t before its gradient step."""
        return False

    def visit(self, it: Iterate) -> Tensor:
        """The examples of `it.idx` that go on (bool mask)."""
        return torch.ones(len(it.idx), dtype=torch.bool, device=it.idx.device)


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


def _start(x: Tensor, eps: Tensor, start: Start) -> Tensor:
    if start == "uniform":
        x_adv = x + (torch.rand_like(x) * 2 - 1) * eps
    elif start in ("trades", "trades_clipped"):
        x_adv = x + 0.001 * torch.randn_like(x)
    else:
        x_adv = x.clone()
    if start == "trades":  # the official TRADES order: first gradient at the raw start
        return x_adv.detach()
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()


def pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float | Tensor, alpha: float | Tensor,
        steps: int, loss: Loss = "ce", start: Start = "uniform",
        rule: PGDRule | None = None) -> PGDResult:
    """Run L-inf PGD and return the adversarial batch (see module docstring); `rule` stops
    examples early and records what it saw (see `PGDRule`)."""
    was_training = model.training
    model.eval()
    try:
        eps_t, alpha_t = _per_example(eps, x), _per_example(alpha, x)
        clean_logits = None
        if loss == "kl":
            with torch.no_grad():
                clean_logits = model(x)
        x_adv = _start(x, eps_t, start)
        if rule is None:
            x_adv = _plain_steps(model, x, y, x_adv, eps_t, alpha_t, steps, loss, clean_logits)
        else:
            x_adv = _rule_steps(model, x, y, x_adv, eps_t, alpha_t, steps, loss, clean_logits,
                                rule)
        return PGDResult(x_adv)
    finally:
        model.train(was_training)


def _plain_steps(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, eps: Tensor,
                 alpha: Tensor, steps: int, loss: Loss, clean_logits: Tensor | None) -> Tensor:
    """The fast path: every example takes every step, no bookkeeping (same iterates as the
    rule loop, which indexes the examples still attacked)."""
    for _ in range(steps):
        x_adv.requires_grad_(True)
        value, _ = _objective(model, x_adv, y, loss, clean_logits)
        (grad,) = torch.autograd.grad(value, x_adv)
        stepped = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(stepped, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def _rule_steps(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, eps: Tensor,
                alpha: Tensor, steps: int, loss: Loss, clean_logits: Tensor | None,
                rule: PGDRule) -> Tensor:
    """The steps with `rule` deciding, per iterate, which examples are attacked further."""
    rule.begin(len(y), steps, x.device)
    idx = torch.arange(len(y), device=x.device)  # examples still being attacked
    previous = x_adv.clone() if rule.returns_previous else None

    def settle(t: int, idx: Tensor, logits: Tensor, checked: bool) -> Tensor:
        go = rule.visit(Iterate(t, steps, idx, logits, y[idx], checked))
        if previous is not None:  # the stopped examples go back to iterate t - 1
            done = idx[~go]
            x_adv[done] = previous[done]
        return go

    for t in range(steps + 1):
        checked = rule.check_at(t)
        if checked:
            with torch.no_grad():  # one forward pass over the examples still attacked
                idx = idx[settle(t, idx, model(x_adv[idx]), True)]
        if t == steps or len(idx) == 0:
            break
        sub = x_adv[idx].requires_grad_(True)
        value, logits = _objective(model, sub, y[idx], loss,
                                   None if clean_logits is None else clean_logits[idx])
        (grad,) = torch.autograd.grad(value, sub)
        go = torch.ones(len(idx), dtype=torch.bool, device=x.device)
        if not checked:
            go = settle(t, idx, logits, False)
        if previous is not None:
            previous[idx[go]] = x_adv[idx[go]]
        e = eps[idx] if eps.dim() else eps
        a = alpha[idx] if alpha.dim() else alpha
        base = x[idx]
        stepped = sub.detach() + a * grad.sign()
        moved = torch.min(torch.max(stepped, base - e), base + e).clamp(0, 1)
        x_adv[idx[go]] = moved[go]
        idx = idx[go]
    return x_adv.detach()


class PassCounter:
    """Counts forward and backward example-passes through a model (the hardware-free cost).

    One forward of a batch of n examples adds n forward passes; when a gradient flows back
    through that forward's output, n backward passes. Counting is done with hooks, so methods and
    attacks never count by hand.
    """

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.enabled = True
        self._handle = None

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def attach(self, model: nn.Module) -> PassCounter:
        self._handle = model.register_forward_hook(self._on_forward)
        return self

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _on_forward(self, _module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if not self.enabled:
            return
        n = int(inputs[0].shape[0])
        self.forward += n
        if isinstance(output, Tensor) and output.requires_grad:
            output.register_hook(lambda grad: self._on_backward(n))

    def _on_backward(self, n: int) -> None:
        self.backward += n
