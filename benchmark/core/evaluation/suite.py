"""The evaluation attacks in one registry: what each records, its title and how it predicts;
the eval key that hashes their settings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.core.evaluation.autoattack import autoattack_labels
from benchmark.core.evaluation.predictions import robust_predictions
from benchmark.core.protocol import Protocol


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

