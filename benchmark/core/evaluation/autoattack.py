"""AutoAttack (pyautoattack) configured from the protocol, run in resumable chunks for
per-point labels."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.common.fileio import atomic_write_json, read_resumable
from benchmark.core.datasets.base import to_float
from benchmark.core.protocol import Protocol

AA_CHUNK = 500  # points per resumable AutoAttack chunk


class _AALog(logging.Handler):
    """Captures AutoAttack's own final 'robust accuracy: X%' line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.robust: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        m = re.fullmatch(r"robust accuracy: ([0-9.]+)%", record.getMessage())
        if m:
            self.robust = float(m.group(1)) / 100


def make_autoattack(model: nn.Module, protocol: Protocol, device: torch.device):
    """A pyautoattack AutoAttack configured from the protocol (version validated there)."""
    from pyautoattack import AutoAttack  # keyword-only API; see docs/protocols.md

    if protocol.aa_version == "custom":
        adversary = AutoAttack(model, attacks=list(protocol.aa_attacks), device=device,
                               eps=protocol.eps, norm="Linf", seed=0, version="custom")
        adversary.apgd.n_restarts = protocol.aa_restarts
        adversary.apgd.n_iter = protocol.aa_iters
        adversary.apgd_targeted.n_restarts = 1
        adversary.apgd_targeted.n_iter = protocol.aa_iters
        adversary.apgd_targeted.n_target_classes = protocol.aa_targets
        adversary.fab.n_restarts = 1
        adversary.fab.n_target_classes = protocol.aa_targets
    else:
        adversary = AutoAttack(model, device=device, eps=protocol.eps, norm="Linf", seed=0,
                               version=protocol.aa_version)
    return adversary


def autoattack_labels(model: nn.Module, x: Tensor, y: Tensor, protocol: Protocol,
                      device: torch.device, partial: Path | None = None,
                      progress: Callable[[int], None] | None = None
                      ) -> tuple[Tensor, float]:
    """AutoAttack's final adversarial label of every point, in resumable chunks, and
    AutoAttack's own aggregate robust accuracy (from its log, weighted over chunks)."""
    model.eval()
    done: dict[str, Any] = read_resumable(partial) or {}
    labels, own = dict(done.get("labels", {})), dict(done.get("own", {}))
    logger = logging.getLogger("auto-attack")
    for start in range(0, len(y), AA_CHUNK):
        key = str(start)
        if key in labels:
            if progress:
                progress(len(labels[key]))
            continue
        xb, yb = to_float(x[start:start + AA_CHUNK]), y[start:start + AA_CHUNK]
        adversary = make_autoattack(model, protocol, device)
        handler, old_level = _AALog(), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            _, y_adv = adversary.run_standard_evaluation(xb.to(device), yb.to(device),
                                                         batch_size=128)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        labels[key], own[key] = y_adv.cpu().tolist(), handler.robust
        if partial:
            atomic_write_json(partial, {"labels": labels, "own": own})
        if progress:
            progress(len(yb))
    y_adv = torch.tensor([v for k in sorted(labels, key=int) for v in labels[k]])
    sizes = {k: len(v) for k, v in labels.items()}
    own_total = (sum(own[k] * sizes[k] for k in own) / len(y)
                 if all(own.get(k) is not None for k in labels) else float("nan"))
    return y_adv, own_total

