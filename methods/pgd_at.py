"""PGD-AT (Madry et al., ICLR 2018): train on PGD-K adversarial examples of the CE loss.

Paper: "Towards Deep Learning Models Resistant to Adversarial Attacks", arXiv 1706.06083.
Official code: github.com/MadryLab/cifar10_challenge (TensorFlow). Deviations: none in the
mechanism; eps / alpha / K, schedule and model come from the protocol.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe


@register_method("pgd_at")
class PgdAT(Method):
    """loss = mean CE(f(x_adv), y), x_adv = PGD-K on CE from a uniform start in the eps ball.

    eps, alpha and K come from the protocol (CIFAR: 8/255, 2/255, 10; FMNIST: 0.1, 0.01, 10).

    Official recipe, cifar10 (MadryLab/cifar10_challenge@f15682d, config.json and model.py):
        model wrn_34_10; epochs 205; batch_size 128; lr 0.1; lr_milestones 102:0.1 154:0.01;
        momentum 0.9; weight_decay 0.0002; eps 8/255; alpha 2/255; train_steps 10
    Deviations: 80,000 steps of batch 128 are 205 epochs (lr x0.1 at step 40k = epoch 102.4, x0.01
    at 60k = 153.6, rounded); the official TensorFlow WRN (5 units per stage, widths 16-160-320-640,
    as WRN-34-10) uses leaky ReLU 0.1 and per-image standardisation, weight decay only on conv/FC
    weights, and crops from a 2-pixel pad; the paper's text says 7 attack steps, the code runs 10.
    """

    title = "PGD-AT"
    recipes = {
        "cifar10": Recipe(
            source=("MadryLab/cifar10_challenge@f15682d, config.json and model.py"),
            protocol={"model": "wrn_34_10", "epochs": 205, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((102, 0.1), (154, 0.01)), "momentum": 0.9,
                      "weight_decay": 0.0002, "eps": 8 / 255, "alpha": 2 / 255,
                      "train_steps": 10},
            deviations=("80,000 steps of batch 128 are 205 epochs (lr x0.1 at step 40k = epoch "
                        "102.4, x0.01 at 60k = 153.6, rounded); the official TensorFlow WRN (5 "
                        "units per stage, widths 16-160-320-640, as WRN-34-10) uses leaky ReLU "
                        "0.1 and per-image standardisation, weight decay only on conv/FC "
                        "weights, and crops from a 2-pixel pad; the paper's text says 7 attack "
                        "steps, the code runs 10"),
        ),
    }

    core = True

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        x_adv = ctx.attack(model, x, y, loss="ce", start="uniform").x_adv
        return F.cross_entropy(model(x_adv), y)
