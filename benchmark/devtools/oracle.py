"""A model no perturbation can fool, for timing attacks at their whole budget (`make gpu-check`).

A random network is fooled at once, so attacks stop early and their time says nothing about a
trained model. `RobustOracle` wraps a real network: its logits are the network's, scaled to
~0, plus a margin of 10 on the label of the nearest reference image. Within eps no point gets
nearer another reference image (random images lie ~22 apart in L2; an 8/255 L-inf ball has an L2
radius of at most 1.74), so every attack runs its whole budget on every point, while the
network's real forward and backward passes (and gradients w.r.t. the input) are computed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SCALE = 1e-3    # the network's share of the logits
MARGIN = 10.0   # the label's lead over every other logit


class RobustOracle(nn.Module):
    """Predicts the label of the nearest of `images` (flattened inputs in [0, 1]) for every
    input, through `net`'s real computation."""

    def __init__(self, net: nn.Module, images: Tensor, labels: Tensor, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes
        self.register_buffer("images", images.flatten(1).float())
        self.register_buffer("labels", labels)

    def nearest_label(self, x: Tensor) -> Tensor:
        return self.labels[torch.cdist(x.detach().flatten(1).float(), self.images).argmin(dim=1)]

    def forward(self, x: Tensor) -> Tensor:
        margin = nn.functional.one_hot(self.nearest_label(x), self.num_classes)
        return SCALE * self.net(x) + MARGIN * margin.to(x.dtype)
