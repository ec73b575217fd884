"""Model registry. Every model takes inputs in [0, 1]; normalization, if any, is a layer inside."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from benchmark.common.compat import import_robustbench
from benchmark.common.errors import UserError
from benchmark.common.registry import Registry

ModelBuilder = Callable[[int, tuple[int, int, int]], nn.Module]  # (num_classes, input shape)
MODELS: Registry[ModelBuilder] = Registry("model")


class ChannelsLast(nn.Module):
    """Runs a model (converted to channels_last) on channels_last inputs, whatever format the
    caller's inputs have (evaluation attacks, pyautoattack)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def in_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """The model to evaluate: wrapped to run channels_last when the protocol asks for it (4-D
    image models only; the wrapper shares the model's weights)."""
    return ChannelsLast(model) if channels_last else model


class Normalize(nn.Module):
    """(x - mean) / std per channel, as the first layer, so attacks work in [0, 1] pixel space."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class SmallCNN(nn.Module):
    """The small CNN of the TRADES MNIST experiments: conv 32-32-pool-64-64-pool, fc 200-200-C
    (`width` multiplies every layer's channels and units: 2 gives the FMNIST teacher).

    Initialised as TRADES's own (yaodongyu/TRADES, models/small_cnn.py): He-normal convolutions
    (fan in, ReLU gain) with zero biases, a zero output layer, PyTorch's default for the two
    hidden linear layers. With PyTorch's default everywhere, the four convolutions shrink the
    signal and adversarial training starts on a chance-level plateau (measured on the quick
    preset's data at lr 0.1: CE on 10-step L-inf adversarial examples, 10 % validation clean
    accuracy after epoch 1 instead of 45 %; docs/protocols.md).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, side: int = 28,
                 width: int = 1) -> None:
        super().__init__()
        c1, c2, fc = 32 * width, 64 * width, 200 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3), nn.ReLU(),
            nn.Conv2d(c1, c1, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 3), nn.ReLU(),
            nn.Conv2d(c2, c2, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        flat = c2 * (((side - 4) // 2 - 4) // 2) ** 2
        self.classifier = nn.Sequential(
            nn.Linear(flat, fc), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(fc, fc), nn.ReLU(),
            nn.Linear(fc, num_classes),
        )
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.classifier[-1].weight)
        nn.init.zeros_(self.classifier[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


def _need_rgb32(name: str, shape: tuple[int, int, int]) -> None:
    if tuple(shape) != (3, 32, 32):
        raise UserError(f"model {name} needs 3x32x32 inputs, the dataset gives "
                        f"{'x'.join(map(str, shape))}; use --set model=small_cnn for 28x28 data")


@MODELS.register("small_cnn")
def small_cnn(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """The small CNN of the TRADES MNIST experiments (any square input of side >= 20)."""
    if shape[1] != shape[2] or shape[1] < 20:
        raise UserError(f"small_cnn needs square inputs of side >= 20, got {shape}")
    return SmallCNN(num_classes, shape[0], shape[1])


@MODELS.register("small_cnn_wide")
def small_cnn_wide(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """The small CNN at twice the width (4x the parameters): the FMNIST presets' teacher."""
    if shape[1] != shape[2] or shape[1] < 20:
        raise UserError(f"small_cnn_wide needs square inputs of side >= 20, got {shape}")
    return SmallCNN(num_classes, shape[0], shape[1], width=2)


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """PreAct ResNet-18 from robustbench's architectures, with the final BN-ReLU (as in HAM/FRL)."""
    _need_rgb32("preact_resnet18", shape)
    arch = import_robustbench("robustbench.model_zoo.architectures.resnet")
    return arch.PreActResNet(arch.PreActBlock, [2, 2, 2, 2], num_classes=num_classes,
                             bn_before_fc=True)


@MODELS.register("resnet18")
def resnet18(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool) from robustbench's architectures."""
    _need_rgb32("resnet18", shape)
    arch = import_robustbench("robustbench.model_zoo.architectures.resnet")
    return arch.ResNet(arch.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def _wide_resnet(name: str, depth: int, shape: tuple[int, int, int], num_classes: int
                 ) -> nn.Module:
    _need_rgb32(name, shape)
    arch = import_robustbench("robustbench.model_zoo.architectures.wide_resnet")
    return arch.WideResNet(depth=depth, widen_factor=10, num_classes=num_classes)


@MODELS.register("wrn_34_10")
def wrn_34_10(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """WideResNet-34-10 from robustbench's architectures."""
    return _wide_resnet("wrn_34_10", 34, shape, num_classes)


@MODELS.register("wrn_28_10")
def wrn_28_10(num_classes: int, shape: tuple[int, int, int]) -> nn.Module:
    """WideResNet-28-10 from robustbench's architectures."""
    return _wide_resnet("wrn_28_10", 28, shape, num_classes)


def build_model(name: str, num_classes: int, shape: tuple[int, int, int],
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None
                ) -> nn.Module:
    """Build a registered model; with mean/std, prepend a Normalize layer."""
    model = MODELS.get(name)(num_classes, tuple(shape))
    if mean is not None and std is not None:
        model = nn.Sequential(Normalize(mean, std), model)
    return model


