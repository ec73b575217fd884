"""The bare PyTorch PGD-AT loop the harness is timed against, and its setup."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.datasets import TensorLoader
from benchmark.core.datasets.base import Splits
from benchmark.core.models import build_model
from benchmark.core.protocol import Protocol


def bare_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: TensorLoader,
               protocol: Protocol, *, channels_last: bool = False,
               freeze_in_attack: bool = False) -> None:
    """A minimal PyTorch PGD-AT epoch: the same batches, attack and update as the harness's
    `pgd_at`, without the harness (no method object, counter, checks or logging)."""
    eps, alpha, steps = protocol.eps, protocol.alpha, protocol.train_steps
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model.eval()
        if freeze_in_attack:
            for p in params:
                p.requires_grad_(False)
        x_adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps),
                              x + eps).clamp(0, 1)
        if freeze_in_attack:
            for p in params:
                p.requires_grad_(True)
        model.train()
        loss = F.cross_entropy(model(x_adv.detach()), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def bare_setup(protocol: Protocol, splits: Splits, device: torch.device,
               start: dict[str, torch.Tensor] | None, channels_last: bool
               ) -> tuple[nn.Module, torch.optim.Optimizer, TensorLoader]:
    """The bare loop's model (from `start` if given), SGD optimizer and training loader: the
    protocol's settings and the harness's batches, nothing else."""
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          nesterov=protocol.nesterov, weight_decay=protocol.weight_decay)
    loader = TensorLoader(splits.train_x, splits.train_y, protocol.batch_size, device=device,
                          shuffle=True, seed=0,
                          augment_with=(splits.info.crop_padding, splits.info.flip))
    return model, opt, loader
