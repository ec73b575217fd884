"""TRADES (Zhang et al., ICML 2019): clean CE plus beta times KL to the adversarial softmax.

Paper: "Theoretically Principled Trade-off between Robustness and Accuracy", arXiv 1901.08573.
Official code: github.com/yaodongyu/TRADES (trades.py). Deviations: none in the mechanism (the
attack takes its first gradient at the unclipped start x + 0.001 N(0, 1), as the official code
does); eps / alpha / K come from the protocol.
"""

from torch import Tensor, nn

from benchmark.common.settings import setting
from benchmark.core.losses import trades_loss
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.recipe import Recipe
from benchmark.core.search_space import LogRange


@register_method("trades")
class Trades(Method):
    """x_adv = PGD-K on KL(f(x) || f(x_adv)) from x + 0.001 N(0, 1);
    loss = CE(f(x), y) + beta * KL(f(x) || f(x_adv)), KL summed over classes, batch mean.

    eps / alpha / K from the protocol (the official code's 0.031 / 0.007 become 8/255 / 2/255).

    Official recipe, cifar10 (yaodongyu/TRADES@6e8e11b, train_trades_cifar10.py argparse defaults
        (the README runs it without flags)):
        model wrn_34_10; epochs 76; batch_size 128; lr 0.1; lr_milestones 74:0.1; momentum 0.9;
        weight_decay 0.0002; eps 0.031; alpha 0.007; train_steps 10; beta 6
    Deviations: none beyond the harness's own (data split, evaluation); the schedule's later drops
    at epochs 90 and 100 never happen in 76 epochs.
    """

    title = "TRADES"
    recipes = {
        "cifar10": Recipe(
            source=("yaodongyu/TRADES@6e8e11b, train_trades_cifar10.py argparse defaults (the "
                    "README runs it without flags)"),
            protocol={"model": "wrn_34_10", "epochs": 76, "batch_size": 128, "lr": 0.1,
                      "lr_milestones": ((74, 0.1),), "momentum": 0.9, "weight_decay": 0.0002,
                      "eps": 0.031, "alpha": 0.007, "train_steps": 10},
            hparams={"beta": 6},
            deviations=("none beyond the harness's own (data split, evaluation); the schedule's "
                        "later drops at epochs 90 and 100 never happen in 76 epochs"),
        ),
    }

    core = True
    search_space = {"beta": LogRange(1.0, 12.0)}  # the paper's trade-off knob (1/lambda)
    beta: float = setting(6.0, ge=0)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        x_adv = ctx.attack(model, x, y, loss="kl", start="trades").x_adv
        return trades_loss(model(x), model(x_adv), y, self.beta)
