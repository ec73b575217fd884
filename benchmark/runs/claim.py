"""Claiming a run directory for a spec: reuse it, resume it, set an older run aside, or refuse."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_json
from benchmark.core.run_paths import RunPaths
from benchmark.runs.provenance import changed_files
from benchmark.runs.schema import LOCK_FILE, RunSpec


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
    if same_settings(old, new):
        files = changed_files(old.get("code_files") or old.get("code"), spec.code_files)
        if files:
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3
                                            else "")
            return Verdict("set_aside", f"code changed: {shown}", old_key)
        what = "teacher" if old.get("teacher") != new.get("teacher") else "warm-start base's code"
        return Verdict("set_aside", f"its {what} changed", old_key)
    return Verdict("conflict", f"{paths.root} holds a run with other settings "
                               f"({settings_diff(old, new)}); use --results DIR for the new "
                               f"settings, or delete that directory", old_key)


def same_settings(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The same seed, protocol and hyperparameters (a setting only one of them has is one the
    code added or removed: a code change, not another setting), and the same warm start."""
    def same(section: str) -> bool:
        a, b = old.get(section) or {}, new.get(section) or {}
        return all(a[k] == b[k] for k in set(a) & set(b))

    def warm(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in (d.get("warm_start") or {}).items() if k != "run_key"}

    return old.get("seed") == new.get("seed") and same("protocol") and same("hparams") and \
        warm(old) == warm(new)


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

