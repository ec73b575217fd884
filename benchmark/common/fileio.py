"""Files written atomically (temp file + rename) and read back with one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmark.common.errors import UserError, warn


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


def read_resumable(path: Path | None) -> dict[str, Any] | None:
    """A resumable evaluation file, or None if absent or damaged (then recomputed, with a
    warning: a kill mid-write must not stop the run)."""
    if path is None or not path.exists():
        return None
    try:
        data = read_json(path)
    except UserError as err:
        warn(f"{err}; recomputing it")
        return None
    if not isinstance(data, dict):
        warn(f"{path} is damaged (not a JSON object); recomputing it")
        return None
    return data


def load_state(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True (never unpickles code)."""
    with open(path, "rb") as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
