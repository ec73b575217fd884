"""Run specs, run keys, result paths, atomic writes and status derived from files."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import UserError

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers (not where or on what it ran)."""

    method: str
    dataset: str
    preset: str
    seed: int
    protocol: dict[str, Any]
    hparams: dict[str, Any]
    warm_start: dict[str, Any] | None = None   # {"method", "epoch", "run_key"} of the base
    schema: int = SCHEMA_VERSION

    @property
    def model(self) -> str:
        return self.protocol["model"]

    @property
    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model": self.model, "run_key": self.key}


@dataclass(frozen=True)
class RunPaths:
    """The files of one run directory: results/<dataset>/<preset>/<method>/seed<k>/."""

    root: Path
    files: dict[str, str] = field(default_factory=lambda: {
        "spec": "spec.json", "env": "env.json", "log": "train.jsonl", "ckpt": "ckpt_last.pt",
        "best": "model_best.pt", "last": "model_last.pt", "record": "record.json",
        "done": "train_done.json",
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


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj)}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err.msg}); delete it to recompute") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the code that ran (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def environment(device: torch.device) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "torchvision", "pyautoattack", "robustbench", "numpy", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {**git_state(), "packages": versions, "device": str(device),
            "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(), "host": platform.node(),
            "python": platform.python_version()}


def status(paths: RunPaths) -> str:
    """not started | training | trained | evaluated, derived from the files alone."""
    if paths.record.exists():
        return "evaluated"
    if paths.done.exists():
        return "trained"
    if paths.spec.exists():
        return "training"
    return "not started"


def iter_run_dirs(results: Path) -> Iterator[Path]:
    """Every run directory (one holding spec.json) under `results`."""
    yield from sorted(p.parent for p in Path(results).glob("*/*/*/seed*/spec.json"))


def claim_spec(paths: RunPaths, spec: RunSpec) -> None:
    """Write spec.json, or check that an existing one describes the same run."""
    if paths.spec.exists():
        old = read_json(paths.spec)
        if old.get("run_key") != spec.key:
            raise UserError(
                f"{paths.root} holds a run with other settings (run key {old.get('run_key')} != "
                f"{spec.key}); use --results DIR for the new settings, or delete that directory"
            )
        return
    atomic_write_json(paths.spec, spec.as_dict())
