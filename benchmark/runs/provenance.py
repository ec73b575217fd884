"""Which code made a run's numbers: code digests in the run key, and the git state.

A run's key hashes two digests (code_digest.py): of the harness code that trains and evaluates
(`NUMERIC_CODE`: the package benchmark/core) and of the method's own file(s). Editing what either
computes gives a new run key, so a result is never reused for other code; moving or renaming a
file, or editing a comment or a docstring, keeps the key. Per-file digests are recorded beside
the key (not in it) to name the files that changed.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmark.runs.code_digest import files_digest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Harness code that changes a run's numbers (files or packages, relative to the repository).
# Reporting, launching and the CLI are left out: they never change a number.
NUMERIC_CODE = (
    "benchmark/core",
)
# Paths whose uncommitted or untracked changes make the git state dirty.
CODE_DIRS = ("benchmark", "methods")


def _rel(path: Path) -> str:
    """A path relative to the repository; a file outside it is named `external/<file name>`, so
    the run key does not depend on where that file sits."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return f"external/{path.name}"


def file_digest(path: Path) -> str:
    """One file's digest of what it computes (see code_digest.py)."""
    return files_digest([path])


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a teacher checkpoint given by path)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _harness_files() -> list[Path]:
    files: list[Path] = []
    for entry in NUMERIC_CODE:
        path = REPO_ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def method_files(cls: type) -> list[Path]:
    """The files defining a method: every class of its MRO outside the harness's base class,
    and the `methods.*` modules its own module imports from."""
    files: set[Path] = set()
    harness = Path(inspect.getfile(sys.modules["benchmark.core.method"])).resolve()
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() != harness and klass is not object:
            files.add(Path(path).resolve())
    own = sys.modules.get(cls.__module__)
    for value in vars(own).values() if own else ():
        name = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if not (isinstance(name, str) and name.startswith("methods.")):
            continue
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            files.add(Path(path).resolve())
    return sorted(files)


def _fileless_digest(cls: type) -> str:
    """Digest of a class defined without a source file (`python -c`, a notebook cell): the
    bytecode of its own functions and its plain class attributes."""
    h = hashlib.sha256()
    for name, value in sorted(vars(cls).items()):
        code = getattr(value, "__code__", None)
        if code is not None:
            h.update(name.encode() + marshal.dumps(code))
        elif isinstance(value, (int, float, str, bool, tuple)) or value is None:
            h.update(f"{name}={value!r}".encode())
    return h.hexdigest()[:16]


def _fileless_classes(cls: type) -> list[type]:
    return [k for k in cls.__mro__ if k is not object
            and not getattr(sys.modules.get(k.__module__), "__file__", None)]


def code_digests(cls: type | None) -> dict[str, str]:
    """The run key's code part: {"harness": digest, "method": digest} for a run of method `cls`
    (the harness alone for None: a scored model), plus the bytecode digest of any class of the
    method defined without a source file."""
    digests = {"harness": files_digest(_harness_files())}
    if cls is not None:
        digests["method"] = files_digest(method_files(cls))
        for klass in _fileless_classes(cls):
            digests[f"<no file>/{klass.__module__}.{klass.__qualname__}"] = \
                _fileless_digest(klass)
    return digests


def code_files(cls: type | None) -> dict[str, str]:
    """{relative path: digest} of every file in `code_digests` (recorded to name what changed,
    not part of the run key)."""
    own = method_files(cls) if cls is not None else []
    return {_rel(p): file_digest(p) for p in [*own, *_harness_files()]}


def changed_files(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Paths whose digest differs (or that appeared or disappeared)."""
    old = old or {}
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def git_state() -> dict[str, Any]:
    """Commit of the checkout and whether its code differs from it: modified or untracked files
    under benchmark/ or methods/ (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=10)
            return out.stdout if out.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--untracked-files=all", "--", *CODE_DIRS)
    changed = [line[3:] for line in (status or "").splitlines()
               if not line[3:].endswith((".pyc", "/"))]
    return {"git_commit": commit, "git_dirty": bool(changed) if status is not None else None,
            "git_changed": changed[:50]}
