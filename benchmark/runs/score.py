"""The run of a model scored by `fairbench eval`: a record like a trained run's (one checkpoint:
`best` and `last` hold the same numbers from one eval file; no training cost, no history), in
results/<dataset>/<preset>/<label>/seed0/, under the run's lock."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_json
from benchmark.core.datasets.base import load_splits
from benchmark.core.evaluation.evaluator import EvalSet, Evaluator, weights_digest
from benchmark.core.protocol import Protocol
from benchmark.core.run_paths import RunPaths
from benchmark.core.train_state import TrainSummary
from benchmark.runs.claim import claim_spec, compare_spec
from benchmark.runs.environment import environment
from benchmark.runs.lock import RunLock
from benchmark.runs.provenance import code_digests, code_files
from benchmark.runs.record import eval_cost, evaluate_checkpoint, write_record
from benchmark.runs.schema import CHECKPOINTS, CheckpointEval, RunSpec


@dataclass(frozen=True)
class ScoredModel:
    """A model from outside the harness, and where and how to score it."""

    model: nn.Module
    label: str
    source: dict[str, Any]          # {"kind": "checkpoint" | "robustbench", ...}
    protocol: Protocol
    results: Path
    data_dir: Path | None = None
    download: bool = False

    def spec(self) -> RunSpec:
        p = self.protocol
        return RunSpec(self.label, p.dataset, p.preset, 0, p.spec_dict(),
                       {"source": self.source["kind"], "weights": weights_digest(self.model)},
                       code=code_digests(None), code_files=code_files(None))


def score_model(scored: ScoredModel, device: torch.device, show_progress: bool = True
                ) -> tuple[CheckpointEval, list[str], RunPaths]:
    """Evaluate the model per class and write its record; returns the evaluation, the class
    names and the run's paths. A directory holding another model under the label is refused."""
    p, spec = scored.protocol, scored.spec()
    paths = RunPaths.of(scored.results, p.dataset, p.preset, scored.label, 0)
    if compare_spec(paths, spec).action == "conflict":
        raise UserError(f"{paths.root} holds another model or protocol under the label "
                        f"{scored.label}; pass --label NAME, or delete that directory")
    splits = load_splits(p.dataset, seed=0, val_per_class=p.val_per_class,
                         train_per_class=p.train_per_class, test_per_class=p.test_per_class,
                         data_dir=scored.data_dir, download=scored.download)
    lock = RunLock(paths.root)
    lock.wait(on_wait=lambda owner: print(f"waiting for {paths.root}, held by "
                                          f"{owner.describe()}", file=sys.stderr))
    try:
        claim_spec(paths, spec)
        env = environment(device)
        atomic_write_json(paths.env, env)
        data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
        evaluator = Evaluator(p, device, show_progress=show_progress)
        entry, rel = evaluate_checkpoint(evaluator, scored.model, data, paths, "best", None)
        evals, files = dict.fromkeys(CHECKPOINTS, entry), dict.fromkeys(CHECKPOINTS, rel)
        write_record(paths, spec, splits.info.classes, env, TrainSummary(), evals, files, p, [],
                     source=scored.source, eval_cost=eval_cost(evals, files))
    finally:
        lock.release()
    return entry, list(splits.info.classes), paths
