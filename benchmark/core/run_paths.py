"""The files of one run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """The files of one run directory: results/<dataset>/<preset>/<method>/seed<k>/."""

    root: Path
    files: dict[str, str] = field(default_factory=lambda: {
        "spec": "spec.json", "env": "env.json", "log": "train.jsonl", "ckpt": "ckpt_last.pt",
        "best": "model_best.pt", "last": "model_last.pt", "record": "record.json",
        "done": "train_done.json", "prev": "ckpt_prev.pt", "failed": "failed.json",
        "error": "error.txt",
    })

    @classmethod
    def of(cls, results: Path, dataset: str, preset: str, method: str, seed: int) -> RunPaths:
        return cls(Path(results) / dataset / preset / method / f"seed{seed}")

    def __getattr__(self, name: str) -> Path:
        files = object.__getattribute__(self, "files")
        if name in files:
            return self.root / files[name]
        raise AttributeError(name)

    def epoch_ckpt(self, epoch: int) -> Path:
        """A kept copy of the checkpoint after `epoch` epochs (warm starts read it)."""
        return self.root / f"ckpt_epoch{epoch}.pt"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

