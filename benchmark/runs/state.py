"""What a results tree holds, from its files alone: every run (its directory, or an entry of a
plan file), and each run's state. `fairbench status` and the report both read it through here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.common.errors import UserError
from benchmark.common.fileio import read_json, read_jsonl
from benchmark.common.schema import SchemaError
from benchmark.core.run_paths import RunPaths
from benchmark.runs.lock_file import is_live, read_lock
from benchmark.runs.schema import PLAN_FILE, Failure, PlanFile, PlannedRun, RunRecord


def run_state(paths: RunPaths) -> tuple[str, str]:
    """(state, detail) of a run directory, from its files alone: not started | training |
    interrupted | failed | trained | evaluating | evaluated | damaged."""
    try:
        if paths.record.exists():
            RunRecord.from_dict(read_json(paths.record))
            return "evaluated", ""
        if not paths.spec.exists():
            return "not started", ""
        spec = read_json(paths.spec)
        if not isinstance(spec, dict):
            raise SchemaError(f"{paths.spec} is not a JSON object")
        if paths.failed.exists():
            failure = Failure.from_dict(read_json(paths.failed))
            return "failed", failure.describe()
        epochs = len(read_jsonl(paths.log))
    except (UserError, SchemaError) as err:
        return "damaged", str(err)
    owner = read_lock(paths.root)
    live = owner is not None and is_live(owner)
    if paths.done.exists():
        return ("evaluating", owner.describe()) if live and owner else \
            ("trained", "not evaluated")
    total = spec.get("end_epoch") or (spec.get("protocol") or {}).get("epochs")
    begin = (spec.get("warm_start") or {}).get("epoch", 0) or 0
    progress = f"epoch {epochs}/{total - begin}" if isinstance(total, int) else f"{epochs} epochs"
    if live and owner is not None:
        return "training", f"{progress}, {owner.describe()}"
    return "interrupted", progress


_SEED_DIR = re.compile(r"^seed(\d+)$")


@dataclass(frozen=True)
class RunEntry:
    """One run of a results tree: results/<dataset>/<preset>/<method>/seed<k>."""

    dataset: str
    preset: str
    method: str                     # the run's label (with its variant)
    seed: int
    paths: RunPaths | None          # None: planned, no directory yet

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.preset}/{self.method}/seed{self.seed}"

    def state(self) -> tuple[str, str]:
        return run_state(self.paths) if self.paths is not None else ("not started", "")


def plan_path(results: Path, dataset: str, preset: str) -> Path:
    return Path(results) / dataset / preset / PLAN_FILE


def read_plan(path: Path) -> list[PlannedRun]:
    """The runs planned in `path` (none if it is missing or damaged: it only lists runs)."""
    try:
        return PlanFile.from_dict(read_json(path)).planned()
    except (OSError, UserError, SchemaError, ValueError, KeyError, TypeError, AttributeError):
        return []


def walk_results(results: Path, dataset: str | None = None, preset: str | None = None
                 ) -> list[RunEntry]:
    """Every run under `results` (of one dataset and/or preset if given), sorted: each
    seed<k> directory, then each planned run that has no directory yet."""
    found: dict[tuple[str, str, str, int], RunEntry] = {}
    for preset_dir in _preset_dirs(Path(results), dataset, preset):
        d, p = preset_dir.parent.name, preset_dir.name
        for method_dir in sorted(x for x in preset_dir.iterdir() if x.is_dir()):
            for run_dir in sorted(x for x in method_dir.iterdir() if x.is_dir()):
                if match := _SEED_DIR.match(run_dir.name):
                    seed = int(match.group(1))
                    found[(d, p, method_dir.name, seed)] = RunEntry(
                        d, p, method_dir.name, seed, RunPaths(run_dir))
        for planned in read_plan(preset_dir / PLAN_FILE):
            key = (d, p, planned.method, planned.seed)
            found.setdefault(key, RunEntry(d, p, planned.method, planned.seed, None))
    return [found[k] for k in sorted(found)]


def _preset_dirs(results: Path, dataset: str | None, preset: str | None) -> list[Path]:
    if not results.is_dir():
        return []
    return sorted(p for p in results.glob(f"{dataset or '*'}/{preset or '*'}") if p.is_dir()
                  and not p.name.startswith(".") and not p.parent.name.startswith("."))
