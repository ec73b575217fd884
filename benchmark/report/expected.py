"""Which runs a report expects (every method with a run directory or a planned run, on every
seed seen; a scored model on its own seed; never a tried-but-not-selected tuning configuration),
their records, and the ones missing with how far they got."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError
from benchmark.common.fileio import read_json
from benchmark.common.schema import SchemaError
from benchmark.core.run_paths import RunPaths
from benchmark.runs.schema import RunRecord, label_method
from benchmark.runs.state import run_state, walk_results
from benchmark.tuning.tune_file import read_tune, tune_path


@dataclass(frozen=True)
class MissingRun:
    """An expected run without a usable record.json, and how far it got."""

    method: str
    seed: int
    state: str          # not started | training | interrupted | failed | trained | damaged
    detail: str = ""    # e.g. "epoch 1/2", the failure's reason

    @property
    def name(self) -> str:
        return f"{self.method}/seed{self.seed}"

    def describe(self) -> str:
        return f"{self.name} ({self.state}{', ' + self.detail if self.detail else ''})"


def _is_scored(run_dir: Path) -> bool:
    """A `fairbench eval` run (a scored checkpoint or zoo model, not trained here)."""
    try:
        spec = read_json(RunPaths(run_dir).spec)
        return isinstance(spec, dict) and "source" in (spec.get("hparams") or {})
    except (UserError, ValueError, OSError, TypeError):
        return False


def find_runs(results: Path, dataset: str, preset: str
              ) -> tuple[list[RunRecord], list[MissingRun], dict[str, list[int]]]:
    """Finished records, missing runs and the expected method -> seeds.

    Expected: every trained method with a run directory, each with the union of all seeds seen,
    so a method with some seeds finished and others not is listed as missing those seeds; a
    model scored by `fairbench eval` expects only the seed it has.
    """
    tuned = read_tune(tune_path(Path(results), dataset, preset))
    search_only = tuned.search_only() if tuned is not None else set()
    entries = [e for e in walk_results(Path(results), dataset, preset)
               if e.method not in search_only]  # tried configurations, never evaluated
    dirs: dict[str, dict[int, Path]] = {}
    planned: dict[str, set[int]] = {}
    for entry in entries:
        if entry.paths is not None:
            dirs.setdefault(entry.method, {})[entry.seed] = entry.paths.root
        else:
            planned.setdefault(entry.method, set()).add(entry.seed)
    seeds = sorted({s for by_seed in dirs.values() for s in by_seed}
                   | {s for p in planned.values() for s in p})
    expected = {m: sorted(dirs[m]) if m in dirs and all(map(_is_scored, dirs[m].values()))
                else seeds for m in order_methods(set(dirs) | set(planned))}
    records, missing = [], []
    for method, method_seeds in expected.items():
        for seed in method_seeds:
            run_dir = dirs.get(method, {}).get(seed)
            state, detail = run_state(RunPaths(run_dir)) if run_dir else ("not started", "")
            if state == "evaluated":
                try:
                    records.append(RunRecord.from_dict(read_json(run_dir / "record.json")))
                    continue
                except (UserError, SchemaError, OSError) as err:
                    state, detail = "damaged", str(err)
            missing.append(MissingRun(method, seed, state, detail))
    return records, missing, expected


BASELINE = "pgd_at"


def order_methods(methods: Any) -> list[str]:
    """pgd_at and its variants first (the reference), then the others alphabetically."""
    return sorted(set(methods), key=lambda m: (label_method(m) != BASELINE, m))
