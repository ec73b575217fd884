"""tune.json (<results>/<dataset>/<preset>/tune.json): what `fairbench tune` tried and chose,
per method: every configuration (its run's label and settings), the budget, the criterion, the
selected configuration and the base it warm-starts from, and the evidence the selection read:
each configuration's validation line at its run's best checkpoint when the search was decided.

A decision stands: a later `fairbench tune` with the same search (seed, base, budget, criterion,
configurations) reuses it and never re-scores, so retraining a run after the decision (the
selected seed-0 run, whose checkpoint was lost with a machine) cannot change the selection or
the appendix. A search with other settings (another criterion or budget) is decided again from
the runs' validation histories, without retraining."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_json, read_json
from benchmark.common.schema import Schema, SchemaError

TUNE_FILE = "tune.json"


@dataclass
class TriedConfig(Schema):
    """One configuration of a search: its index, its run's label and its settings."""

    index: int
    label: str                       # the run's directory name: `trades` or `trades[tune=3]`
    settings: dict[str, Any]         # {"lr_factor": f, knob: value, ...}
    evidence: dict[str, Any] | None = None  # {"epoch", "val"} the decision read (None: not
    #                                         decided yet, or no best checkpoint: diverged)

    def same_config(self, other: TriedConfig) -> bool:
        """The same run and settings (what was decided on is not compared)."""
        return (self.label, self.settings) == (other.label, other.settings)


@dataclass
class MethodSearch(Schema):
    """A method's search: what it tried on `seed`, and what it selected."""

    seed: int
    configs: list[TriedConfig]       # every configuration ever tried (a smaller budget keeps them)
    selected: str | None = None      # the selected configuration's label (None: not decided)
    base: str | None = None          # the label of the base run the configurations start from
    budget: int | None = None        # the budget and criterion of the search's last selection
    criterion: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "configs": [c.as_dict() for c in self.configs]}

    def decides_like(self, new: MethodSearch) -> bool:
        """This recorded decision stands for the search `new` (same seed, base, budget,
        criterion and candidate configurations): reuse it, never score again."""
        head = self.configs[:len(new.configs)]
        return (self.selected in {c.label for c in new.configs} and len(head) == len(new.configs)
                and (self.seed, self.base, self.budget, self.criterion)
                == (new.seed, new.base, new.budget, new.criterion)
                and all(a.same_config(b) for a, b in zip(head, new.configs, strict=True)))

    @classmethod
    def from_dict(cls, data: Any) -> MethodSearch:
        search = super().from_dict(data)
        search.configs = [TriedConfig.from_dict(c) for c in search.configs]
        return search


@dataclass
class TuneFile(Schema):
    budget: int
    criterion: str
    methods: dict[str, MethodSearch] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "criterion": self.criterion,
                "methods": {k: v.as_dict() for k, v in self.methods.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> TuneFile:
        tune = super().from_dict(data)
        tune.methods = {k: MethodSearch.from_dict(v) for k, v in tune.methods.items()}
        return tune

    def selections(self) -> dict[str, str]:
        """Each decided method's selected label (`trades[tune=3]`, or `trades` when its default
        configuration won)."""
        return {m: s.selected for m, s in self.methods.items() if s.selected is not None}

    def criterion_of(self, method: str) -> str:
        """The criterion `method`'s last search selected by (the file's, if it recorded none)."""
        return self.methods[method].criterion or self.criterion

    def budget_of(self, method: str) -> int:
        """The budget of `method`'s last search (the file's, if it recorded none)."""
        return self.methods[method].budget or self.budget

    def search_only(self) -> set[str]:
        """Labels of configurations that were tried and not selected (never evaluated)."""
        return {c.label for method, s in self.methods.items() for c in s.configs
                if c.label not in (s.selected, method)}


def merged_configs(old: MethodSearch | None, new: list[TriedConfig]) -> list[TriedConfig]:
    """This search's configurations, then any other one an earlier search tried (its run
    stays out of the report as a tried configuration)."""
    labels = {c.label for c in new}
    return [*new, *(c for c in (old.configs if old else []) if c.label not in labels)]


def tune_path(results: Path, dataset: str, preset: str) -> Path:
    return Path(results) / dataset / preset / TUNE_FILE


def read_tune(path: Path) -> TuneFile | None:
    """The tune file at `path`, None if there is none; a damaged one is a one-line error."""
    if not path.exists():
        return None
    try:
        return TuneFile.from_dict(read_json(path))
    except SchemaError as err:
        raise UserError(f"{path} is damaged ({err}); delete it to tune again") from None


def write_tune(path: Path, tune: TuneFile) -> None:
    atomic_write_json(path, tune.as_dict())
