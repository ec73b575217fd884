"""Evaluator: per-class accuracy under clean, PGD-20, CW and AutoAttack; chunked and resumable.

Results of one checkpoint go to `eval/<checkpoint>-<eval key>.json`, rewritten atomically after
each attack (and after each AutoAttack chunk in a side file), so a killed evaluation resumes
where it stopped. The eval key hashes the evaluation settings and the checkpoint's weights.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from benchmark.attacks import pgd
from benchmark.datasets.base import first_per_class, to_float
from benchmark.errors import UserError, warn
from benchmark.memory import peak_mb, reset_peak
from benchmark.metrics import evaluate_predictions, pack_outcomes
from benchmark.models import in_memory_format
from benchmark.protocols import Protocol
from benchmark.records import atomic_write_json, read_json

AA_CHUNK = 500  # points per resumable AutoAttack chunk


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


@dataclass(frozen=True)
class AttackRun:
    """What an evaluation attack gets: the model (eval mode, in its memory format), the points
    (all, or AutoAttack's per-class subset), the clean predictions on them, and the evaluator."""

    model: nn.Module
    x: Tensor
    y: Tensor
    clean_pred: Tensor
    protocol: Protocol
    device: torch.device
    progress: Callable[[int], Any]
    partial_file: Path


@dataclass(frozen=True)
class EvalAttack:
    """One evaluation attack: its record key, the settings it records (hashed into the eval
    key), its title from those settings (real steps: a 2-step PGD is "PGD-2"), whether it runs
    on AutoAttack's per-class subset, and how it predicts."""

    name: str
    settings: Callable[[Protocol], dict[str, Any]]
    title: Callable[[dict[str, Any]], str]
    run: Callable[[AttackRun], tuple[Tensor, dict[str, Any]]]
    subset: bool = False


def _aa_settings(p: Protocol) -> dict[str, Any]:
    aa: dict[str, Any] = {"version": p.aa_version, "per_class": p.aa_per_class, "seed": 0,
                          "description": p.aa_description()}
    if p.aa_version == "custom":
        aa.update(attacks=list(p.aa_attacks), apgd_restarts=p.aa_restarts,
                  n_target_classes=p.aa_targets, apgd_iters=p.aa_iters)
    return aa


def _pgd_run(loss: str, steps_of: Callable[[Protocol], int]
             ) -> Callable[[AttackRun], tuple[Tensor, dict[str, Any]]]:
    def run(r: AttackRun) -> tuple[Tensor, dict[str, Any]]:
        p = r.protocol
        return robust_predictions(r.model, r.x, r.y, r.clean_pred, eps=p.eps, alpha=p.eps / 4,
                                  steps=steps_of(p), loss=loss, batch_size=p.eval_batch_size,
                                  device=r.device, progress=r.progress), {}
    return run


def _clean_run(r: AttackRun) -> tuple[Tensor, dict[str, Any]]:
    r.progress(len(r.y))
    return r.clean_pred, {}


def _aa_run(r: AttackRun) -> tuple[Tensor, dict[str, Any]]:
    pred, own = autoattack_labels(r.model, r.x, r.y, r.protocol, r.device, r.partial_file,
                                  r.progress)
    return pred, {"autoattack_own_robust_accuracy": own,
                  "pointwise_robust_accuracy": float((pred == r.y).double().mean())}


EVAL_ATTACKS: dict[str, EvalAttack] = {a.name: a for a in (
    EvalAttack("clean", lambda p: {}, lambda s: "Clean", _clean_run),
    EvalAttack("pgd20", lambda p: {"steps": p.eval_pgd_steps, "alpha": p.eps / 4, "loss": "ce",
                                   "start": "uniform", "seed": 0},
               lambda s: f"PGD-{s.get('steps', 20)}",
               _pgd_run("ce", lambda p: p.eval_pgd_steps)),
    EvalAttack("cw", lambda p: {"steps": p.eval_cw_steps, "alpha": p.eps / 4,
                                "loss": "cw_margin", "start": "uniform", "seed": 0},
               lambda s: f"CW-{s['steps']}" if "steps" in s else "CW",
               _pgd_run("cw", lambda p: p.eval_cw_steps)),
    EvalAttack("autoattack", _aa_settings, lambda s: "AutoAttack", _aa_run, subset=True),
)}
ATTACKS = tuple(EVAL_ATTACKS)  # record keys, in table order


def attack_title(name: str, settings: dict[str, Any] | None = None) -> str:
    """The attack's title from its recorded settings (e.g. "PGD-20", "PGD-2", "CW-30")."""
    attack = EVAL_ATTACKS.get(name)
    return attack.title(settings or {}) if attack else name


def eval_settings(protocol: Protocol) -> dict[str, Any]:
    """Every setting that changes evaluation numbers (recorded, and hashed into the eval key)."""
    out: dict[str, Any] = {
        "eps": protocol.eps, "test_per_class": protocol.test_per_class,
        "robust_counts": "clean-correct and adversarially correct (only clean-correct points "
                         "are attacked)"}
    for name, attack in EVAL_ATTACKS.items():
        if name != "clean":
            out[name] = attack.settings(protocol)
    return out


def eval_key(protocol: Protocol, digest: str) -> str:
    blob = repr((sorted(eval_settings(protocol).items(), key=str), digest)).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    model.eval()
    out = [model(to_float(x[i:i + batch_size]).to(device)).argmax(1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def pgd_predictions(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, alpha: float,
                    steps: int, loss: str, batch_size: int, device: torch.device,
                    seed: int = 0, progress: Callable[[int], None] | None = None) -> Tensor:
    """Predictions on PGD adversarial examples (uniform start, fixed seed)."""
    torch.manual_seed(seed)
    model.eval()
    preds = []
    for i in range(0, len(x), batch_size):
        xb, yb = to_float(x[i:i + batch_size]).to(device), y[i:i + batch_size].to(device)
        x_adv = pgd(model, xb, yb, eps=eps, alpha=alpha, steps=steps, loss=loss).x_adv
        with torch.no_grad():
            preds.append(model(x_adv).argmax(1).cpu())
        if progress:
            progress(len(yb))
    return torch.cat(preds)


def robust_predictions(model: nn.Module, x: Tensor, y: Tensor, clean_pred: Tensor, *,
                       eps: float, alpha: float, steps: int, loss: str, batch_size: int,
                       device: torch.device, seed: int = 0,
                       progress: Callable[[int], None] | None = None) -> Tensor:
    """Predictions under PGD where a point counts as robust only if it is also classified
    correctly clean (AutoAttack's rule): only the clean-correct points are attacked, the others
    keep their (wrong) clean prediction."""
    correct = (clean_pred == y).nonzero().flatten()
    pred = clean_pred.clone()
    if progress:
        progress(len(y) - len(correct))
    if len(correct):
        pred[correct] = pgd_predictions(model, x[correct], y[correct], eps=eps, alpha=alpha,
                                        steps=steps, loss=loss, batch_size=batch_size,
                                        device=device, seed=seed, progress=progress)
    return pred


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
    done: dict[str, Any] = _read_partial(partial) or {}
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


class Evaluator:
    """Per-class clean / PGD-20 / CW / AutoAttack accuracy of one model on one evaluation set."""

    def __init__(self, protocol: Protocol, device: torch.device, show_progress: bool = True):
        self.protocol, self.device, self.show_progress = protocol, device, show_progress

    def evaluate(self, model: nn.Module, data: EvalSet, out_file: Path,
                 attacks: Sequence[str] = ATTACKS) -> dict[str, Any]:
        """Evaluate (resuming from `out_file` if present) and return the result dict."""
        p, dev = self.protocol, self.device
        model = model.to(dev).eval()
        result = _read_partial(out_file) or {
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
            outcomes = {"n_points": len(y), "outcomes": pack_outcomes(pred == y)}  # paired tests
            result["attacks"][name] = {**summary, **extra, **outcomes}
            result["seconds"][name] = time.perf_counter() - t0
            result.setdefault("peak_memory_mb", {})[name] = peak_mb(dev)
            atomic_write_json(out_file, result)
            out_file.with_suffix(".aa-partial.json").unlink(missing_ok=True)
        return result


def _read_partial(path: Path | None) -> dict[str, Any] | None:
    """A resumable evaluation file, or None if absent or damaged (then recomputed, with a
    warning: a kill mid-write must not stop the run)."""
    if path is None or not path.exists():
        return None
    try:
        data = read_json(path)
    except UserError as err:
        warn(f"{err}; recomputing it")
        return None
    if not isinstance(data, dict):
        warn(f"{path} is damaged (not a JSON object); recomputing it")
        return None
    return data


def load_state(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True (never unpickles code)."""
    with open(path, "rb") as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
