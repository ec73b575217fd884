"""Run specs, run keys, result paths, atomic writes and status derived from files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import UserError, warn
from benchmark.lock import LOCK_FILE, is_live, read_lock
from benchmark.provenance import changed_files, git_state
from benchmark.schema import Failure, RunRecord, RunSpec, SchemaError


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


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """`write` a temp file beside `path`, then rename it over `path`; on any error the temp
    file is removed and the old file is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    _atomic(path, write)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    _atomic(path, lambda tmp: torch.save(obj, tmp))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj)}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is damaged (not valid JSON: {err}); delete it to recompute"
                        ) from None


def read_jsonl(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The JSON lines of `path`. A half-written last line (a kill mid-write) is dropped, with a
    warning when `repair` is set; a damaged line before it is a UserError."""
    if not path.exists():
        return []
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise UserError(f"{path} is damaged at line {i + 1}; delete the run directory "
                                f"to retrain it") from None
            if repair:
                warn(f"{path}: dropped a half-written last line (the run was stopped while "
                     f"writing it)")
    return out


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


def has_progress(paths: RunPaths) -> bool:
    """Whether a run directory holds anything computed (a checkpoint, a model or a record)."""
    return any(p.exists() for p in (paths.ckpt, paths.prev, paths.done, paths.record,
                                    paths.best)) or any(paths.root.glob("ckpt_epoch*.pt"))


@dataclass(frozen=True)
class Verdict:
    """What to do with an existing run directory for a new spec."""

    action: str              # new | same | replace | set_aside | conflict
    note: str = ""           # why (changed files, failed, ...), for the user
    old_key: str = "unknown"  # the run key spec.json holds now


def compare_spec(paths: RunPaths, spec: RunSpec) -> Verdict:
    """Decide how a run directory relates to `spec`, from its files alone.

    same: the same run (resume or reuse). replace: nothing computed there, or the old spec is
    unreadable and nothing was computed. set_aside: the old run failed, or its code changed (the
    old results are moved aside, never reused). conflict: a finished or progressing run of other
    settings (the user must choose another --results or delete it).
    """
    if not paths.spec.exists():
        return Verdict("new")
    try:
        old = json.loads(paths.spec.read_text())
        old_key = old["run_key"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        if has_progress(paths):
            return Verdict("conflict", f"{paths.spec} is damaged; delete {paths.root} to retrain")
        return Verdict("replace", "damaged spec.json, nothing computed")
    if old_key == spec.key:
        return Verdict("same", old_key=old_key)
    if not has_progress(paths):
        return Verdict("replace", "nothing computed yet", old_key)
    if paths.failed.exists():
        return Verdict("set_aside", "the old run had failed", old_key)
    new = spec.as_dict()
    same_settings = all(old.get(k) == new.get(k) for k in ("protocol", "hparams", "seed"))
    old_warm = {k: v for k, v in (old.get("warm_start") or {}).items() if k != "run_key"}
    new_warm = {k: v for k, v in (spec.warm_start or {}).items() if k != "run_key"}
    if same_settings and old_warm == new_warm:
        files = changed_files(old.get("code"), spec.code)
        if files:
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3
                                            else "")
            return Verdict("set_aside", f"code changed: {shown}", old_key)
        return Verdict("set_aside", "its warm-start base's code changed", old_key)
    return Verdict("conflict", f"{paths.root} holds a run with other settings "
                               f"({settings_diff(old, new)}); use --results DIR for the new "
                               f"settings, or delete that directory", old_key)


def settings_diff(old: dict[str, Any], new: dict[str, Any], most: int = 3) -> str:
    """The settings that differ between two specs, e.g. "protocol.eps: 0.1 -> 0.2"."""
    changes = []
    for section in ("protocol", "hparams"):
        a, b = old.get(section) or {}, new.get(section) or {}
        changes += [f"{section}.{k}: {a.get(k, '-')} -> {b.get(k, '-')}"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if old.get("warm_start") != new.get("warm_start") and not changes:
        changes.append("warm start")
    shown = ", ".join(changes[:most]) + (f" and {len(changes) - most} more"
                                         if len(changes) > most else "")
    return shown or f"run key {old.get('run_key')} != {new.get('run_key')}"


def set_aside(paths: RunPaths, why: str, old_key: str) -> Path:
    """Move a run directory's files (not its lock) to <method>/.superseded/seed<k>-<old key>/."""
    target = paths.root.parent / ".superseded" / f"{paths.root.name}-{old_key}"
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{paths.root.name}-{old_key}-{n}")
    target.mkdir(parents=True)
    for entry in paths.root.iterdir():
        if entry.name != LOCK_FILE:
            os.replace(entry, target / entry.name)
    (target / "superseded.txt").write_text(why + "\n")
    return target


def claim_spec(paths: RunPaths, spec: RunSpec) -> str:
    """Make `paths` hold `spec`'s run (caller holds the run lock). Returns a note when an older
    run was replaced or set aside; UserError on a conflict."""
    verdict = compare_spec(paths, spec)
    if verdict.action == "conflict":
        raise UserError(verdict.note)
    if verdict.action == "same":
        return ""
    note = ""
    if verdict.action == "set_aside":
        target = set_aside(paths, verdict.note, verdict.old_key)
        note = f"older run moved to {target} ({verdict.note})"
    elif verdict.action == "replace":
        for entry in paths.root.iterdir():
            if entry.is_file() and entry.name != LOCK_FILE:
                entry.unlink()
    atomic_write_json(paths.spec, spec.as_dict())
    return note


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
