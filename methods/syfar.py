"""Sy-FAR: Symmetry-based Fair Adversarial Robustness (Najjar, Ronen, Sharif; USENIX Security
2026), `syfar`.

Paper: "Sy-FAR: Symmetry-based Fair Adversarial Robustness", arXiv 2509.12939.
Official code: github.com/haneenn24/Sy-FAR-Symmetry-based-Fair-Adversarial-Robustness (read at
6c95b3f: training_schemes/syfar.py; README at 2d978c7). Its only Sy-FAR trainer attacks with ROA
(a rectangular occlusion patch, 224 px faces of PubFig, VGG-16); here the penalty, a function of
the adversarial logits alone, is carried over unchanged to the protocol's L-inf threat model.

Mechanism (the released loss, per batch): p_i = softmax of the adversarial logits;
- soft confusion M (C x C): row c = mean of p_i over the batch's examples of true class c (a class
  absent from the batch has a zero row, as official);
- L_sym = sum_{i<j} |M_ij - M_ji| / (M_ij + M_ji + s) (M_ij + M_ji), s = `smoothing`
  (official `--eps` 0.1: not a perturbation size);
- loss = w_clean CE(f(x), y) + w_adv CE(f(x_adv), y) + w_sym L_sym (the penalty is a sum over
  the C (C - 1) / 2 pairs, not a mean), clean forward first, as official.
x_adv: here PGD-K on CE from a uniform start with the protocol's eps / alpha / K (official: ROA,
an exhaustive patch-position search then 40 sign steps inside the patch, unbounded in [0, 1]).
Checked against the official `symmetry_penalty` (scratch script, 50 random batches with a class
absent): values equal to 2.4e-7, gradients identical.

Defaults (syfar.py argparse and its header command): w_clean 0.1, w_adv 1.0, w_sym 10, s 0.1.
The README's command (`--clean-weight 0.1 --adv-weight 10 --sym-weight 10 --epsilon 0.1`) names
flags syfar.py does not define (and omits its required --data-dir, --num-classes): it does not run.

Deviations from the official code:
- The attack: L-inf PGD instead of ROA (the threat model every method here is judged under).
- The official ROA steps call `loss.backward()`, which also accumulates each iterate's CE
  gradient into the weights' .grad after `optimizer.zero_grad()`: the official update adds
  sum_t grad_theta CE(f(x_t), y) over the 40 attack iterates (eval mode) to the loss's gradient.
  Not reproduced (the shared attack differentiates the input only).
- The official attack leaves the model in eval mode, so after each epoch's first batch every
  forward of the update runs in eval mode (BatchNorm neither uses batch statistics nor updates
  its running ones); here in train mode, `official_eval=True` gives the official modes.
- Optimiser, schedule and data are the protocol's (official: SGD lr 1e-3, momentum 0.9, no weight
  decay, lr x0.1 every 7 epochs, batch 16); checkpoints on validation (official: clean val acc).
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


# --- pure math ------------------------------------------------------------------------------
def soft_confusion(logits: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """M[c] = mean softmax of the batch's examples of true class c (zero row when absent)."""
    probs = logits.softmax(1)
    rows = torch.zeros(num_classes, num_classes, dtype=probs.dtype, device=probs.device)
    rows = rows.index_add(0, y, probs)
    counts = torch.bincount(y, minlength=num_classes).clamp(min=1).to(probs.dtype)
    return rows / counts[:, None]


def symmetry_penalty(m: Tensor, smoothing: float) -> Tensor:
    """sum_{i<j} |M_ij - M_ji| / (M_ij + M_ji + s) * (M_ij + M_ji)."""
    mass = m + m.T
    term = (m - m.T).abs() / (mass + smoothing) * mass
    return torch.triu(term, diagonal=1).sum()


# --- the method -----------------------------------------------------------------------------
@register_method("syfar")
class SyFar(Method):
    """PGD-AT with a clean term and Sy-FAR's penalty on the asymmetry of the adversarial batch's
    soft confusion matrix: loss = w_clean CE(f(x), y) + w_adv CE(f(x_adv), y) + w_sym L_sym.

    Official recipe, cifar10 (haneenn24/Sy-FAR-Symmetry-based-Fair-Adversarial-Robustness@6c95b3f,
        training_schemes/syfar.py argparse defaults (no CIFAR-10 training is released)):
        w_clean 0.1; w_adv 1; w_sym 10; smoothing 0.1
    Deviations: the repository trains Sy-FAR only against ROA patches on PubFig faces (VGG-16,
    224 px, batch 16, lr 0.001, no weight decay); no CIFAR-10 or L-inf training setting is
    released, so the protocol stays the preset's and only the loss weights are the release's.
    """

    title = "Sy-FAR"
    recipes = {
        "cifar10": Recipe(
            source=("haneenn24/Sy-FAR-Symmetry-based-Fair-Adversarial-Robustness@6c95b3f, "
                    "training_schemes/syfar.py argparse defaults (no CIFAR-10 training is "
                    "released)"),
            protocol={},
            hparams={"w_clean": 0.1, "w_adv": 1.0, "w_sym": 10.0, "smoothing": 0.1},
            deviations=("the repository trains Sy-FAR only against ROA patches on PubFig faces "
                        "(VGG-16, 224 px, batch 16, lr 0.001, no weight decay); no CIFAR-10 or "
                        "L-inf training setting is released, so the protocol stays the preset's "
                        "and only the loss weights are the release's"),
        ),
    }
    search_space = {"w_sym": LogRange(1.0, 30.0)}  # the symmetry penalty's weight

    w_clean: float = setting(0.1, ge=0)
    w_adv: float = setting(1.0, ge=0)
    w_sym: float = setting(10.0, ge=0)
    smoothing: float = setting(0.1, gt=0)      # official --eps
    official_eval: bool = False                # the update's forwards in eval mode, as official

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        clean = model(x)
        if self.official_eval:  # the official attack leaves the model in eval mode
            model.eval()
        x_adv = ctx.attack(model, x, y, loss="ce", start="uniform").x_adv
        adv = model(x_adv)
        penalty = symmetry_penalty(soft_confusion(adv, y, ctx.num_classes), self.smoothing)
        ctx.add("syfar_penalty_total", float(penalty.detach()))
        ctx.add("syfar_batches", 1)
        return (self.w_clean * F.cross_entropy(clean, y) + self.w_adv * F.cross_entropy(adv, y)
                + self.w_sym * penalty)

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        batches = ctx.log.pop("syfar_batches", 0.0)
        total = ctx.log.pop("syfar_penalty_total", 0.0)
        return {"syfar_mean_penalty": total / batches if batches else 0.0}
