"""PGD-AT (Madry et al., ICLR 2018): train on PGD-K adversarial examples of the CE loss.

Paper: "Towards Deep Learning Models Resistant to Adversarial Attacks", arXiv 1706.06083.
Official code: github.com/MadryLab/cifar10_challenge (TensorFlow). Deviations: none in the
mechanism; eps / alpha / K, schedule and model come from the protocol.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.method import Method, TrainContext, register_method


@register_method("pgd_at")
class PgdAT(Method):
    """loss = mean CE(f(x_adv), y), x_adv = PGD-K on CE from a uniform start in the eps ball.

    eps, alpha and K come from the protocol (CIFAR: 8/255, 2/255, 10; FMNIST: 0.1, 0.01, 10).
    """

    title = "PGD-AT"

    core = True

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        x_adv = ctx.attack(model, x, y, loss="ce", start="uniform").x_adv
        return F.cross_entropy(model(x_adv), y)
