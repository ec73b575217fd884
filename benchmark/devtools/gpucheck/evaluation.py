"""The evaluation step: the evaluator with a preset's attacks on a `RobustOracle` (a model no
perturbation can fool), which every attack must leave at 100 %; seconds per point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from benchmark.core.datasets import to_float
from benchmark.core.evaluation.evaluator import ATTACKS, EvalSet, Evaluator
from benchmark.core.models import build_model
from benchmark.devtools.gpucheck.checks import Check, Size
from benchmark.devtools.gpucheck.workload import CLASSES, protocol_for
from benchmark.devtools.oracle import RobustOracle
from benchmark.devtools.perf import synthetic_splits


def evaluate_check(preset: str, size: Size, device: torch.device, root: Path
                   ) -> Callable[[Check], None]:
    """The step evaluating with `preset`'s settings."""
    def work(check: Check) -> None:
        """The evaluator with `preset`'s attacks on a model no perturbation can fool."""
        p = protocol_for(preset, size)
        splits = synthetic_splits("cifar10", p)
        net = build_model(p.model, CLASSES, splits.info.shape)
        oracle = RobustOracle(net, to_float(splits.test_x), splits.test_y, CLASSES)
        data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
        result = Evaluator(p, device, show_progress=False).evaluate(
            oracle, data, root / f"eval-{preset}.json")
        fooled = [a for a in ATTACKS if result["attacks"][a]["worst"] < 1.0]
        if fooled:
            raise RuntimeError(f"{', '.join(fooled)} changed predictions of a model no "
                               f"perturbation can fool: the evaluation path is broken")
        n = {a: result["attacks"][a]["n_points"] for a in ATTACKS}
        check.numbers.update(autoattack=p.aa_description(), points=n["clean"],
                             pgd_steps=p.eval_pgd_steps,
                             **{f"{a}_seconds_per_point": result["seconds"][a] / n[a]
                                for a in ATTACKS})
    return work
