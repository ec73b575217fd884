"""Untrained models whose logits depend on the input, for tests of attacks and numerics.

The small CNN starts with a zero output layer (as TRADES's own): every input gets the same logits
and no input gradient, so an attack or a precision comparison on it would check nothing. Here
that layer gets PyTorch's default initialisation instead, as after a first update.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.models import build_model


def untrained(name: str, shape: tuple[int, int, int], num_classes: int = 10, seed: int = 0
              ) -> nn.Module:
    """`build_model(name)` in eval mode, seeded; a zero output layer is redrawn at random."""
    torch.manual_seed(seed)
    model = build_model(name, num_classes, shape).eval()
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    for layer in last:
        if not layer.weight.any():
            layer.reset_parameters()
    return model
