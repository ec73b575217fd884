"""Every number a run records that does not depend on timing: per-epoch losses, learning rates,
updates, passes, validation and method logs, the training summary's counts and best epoch, and
each checkpoint's per-class evaluation with per-point outcomes. Used by the golden test; run

    python tests/golden_numbers.py RESULTS_DIR > tests/golden/smoke_numbers_2threads.json

on records of `fairbench run --dataset fmnist --preset smoke --methods all --set epochs=5` to
write the golden file again (only when a change is meant to change numbers: say so in the
commit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from benchmark.runs.environment import cpu_model

TIMING = {"seconds", "val_seconds", "peak_memory_mb"}
TRAIN_COUNTS = ("passes", "forward_passes", "backward_passes", "epochs", "best_epoch", "best_val",
                "warm_start_passes")


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def numbers(results: Path) -> dict[str, Any]:
    """method -> its untimed numbers, for every record under `results`."""
    out = {}
    for path in sorted(Path(results).glob("*/*/*/seed*/record.json")):
        rec = json.loads(path.read_text())
        out[path.parent.parent.name] = {
            "history": _untimed(rec["history"]), "eval": _untimed(rec["eval"]),
            "train": {k: rec["train"][k] for k in TRAIN_COUNTS}}
    return out


def machine() -> dict[str, Any]:
    """What exact equality of CPU training needs: the same torch, CPU and thread count."""
    return {"torch": torch.__version__, "cpu": cpu_model(), "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps({"machine": machine(), "numbers": numbers(Path(sys.argv[1]))}, indent=1,
                     sort_keys=True))
