"""Evaluator: per-class accuracy under clean, PGD-20, CW and AutoAttack; chunked and resumable.

Results of one checkpoint go to `eval/<checkpoint>-<eval key>.json`, rewritten atomically after
each attack (and after each AutoAttack chunk in a side file), so a killed evaluation resumes
where it stopped. The eval key hashes the evaluation settings and the checkpoint's weights.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from benchmark.common.fileio import atomic_write_json, read_resumable
from benchmark.common.memory import peak_mb, reset_peak
from benchmark.core.datasets.base import first_per_class
from benchmark.core.evaluation.predictions import predict
from benchmark.core.evaluation.suite import ATTACKS, EVAL_ATTACKS, AttackRun, eval_settings
from benchmark.core.metrics import evaluate_predictions, pack_outcomes
from benchmark.core.models import in_memory_format
from benchmark.core.protocol import Protocol


@dataclass
class EvalSet:
    x: Tensor            # uint8 or float images
    y: Tensor
    classes: Sequence[str]


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Evaluator:
    """Per-class clean / PGD-20 / CW / AutoAttack accuracy of one model on one evaluation set."""

    def __init__(self, protocol: Protocol, device: torch.device, show_progress: bool = True):
        self.protocol, self.device, self.show_progress = protocol, device, show_progress

    def evaluate(self, model: nn.Module, data: EvalSet, out_file: Path,
                 attacks: Sequence[str] = ATTACKS) -> dict[str, Any]:
        """Evaluate (resuming from `out_file` if present) and return the result dict."""
        p, dev = self.protocol, self.device
        model = model.to(dev).eval()
        result = read_resumable(out_file) or {
            "settings": eval_settings(p), "weights": weights_digest(model), "attacks": {},
            "seconds": {}}
        model = in_memory_format(model, p.channels_last)
        bs = p.eval_batch_size
        clean_pred = predict(model, data.x, bs, dev)
        for name in attacks:
            if name in result["attacks"]:
                continue
            reset_peak(dev)
            t0 = time.perf_counter()
            attack = EVAL_ATTACKS[name]
            keep = first_per_class(data.y, p.aa_per_class, len(data.classes)) \
                if attack.subset else torch.arange(len(data.y))
            x, y, total = data.x[keep], data.y[keep], len(keep)
            bar = tqdm(total=total, desc=f"eval {out_file.stem.split('-')[0]} {name}",
                       leave=False, disable=not self.show_progress)
            pred, extra = attack.run(AttackRun(model, x, y, clean_pred[keep], p, dev,
                                               bar.update,
                                               out_file.with_suffix(".aa-partial.json")))
            bar.close()
            summary = evaluate_predictions(pred, y, data.classes,
                                           clean_pred=None if name == "clean" else
                                           clean_pred[keep])
            done = replace(summary, n_points=len(y), outcomes=pack_outcomes(pred == y), **extra)
            result["attacks"][name] = done.as_dict()  # outcomes: for paired tests
            result["seconds"][name] = time.perf_counter() - t0
            result.setdefault("peak_memory_mb", {})[name] = peak_mb(dev)
            atomic_write_json(out_file, result)
            out_file.with_suffix(".aa-partial.json").unlink(missing_ok=True)
        return result


