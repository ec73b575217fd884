"""How a run that went wrong is recorded: failed.json (and error.txt for a crash), the not-run
mark of a dependent whose base failed, and an exception as one line."""

from __future__ import annotations

import platform
import time
import traceback

from benchmark.common.errors import RunFailed, UserError, warn
from benchmark.common.fileio import (
    atomic_write_json,
    atomic_write_text,
)
from benchmark.core.run_paths import RunPaths
from benchmark.runs.claim import claim_spec, compare_spec
from benchmark.runs.job import Run
from benchmark.runs.lock import RunLock
from benchmark.runs.lock_file import LockLost
from benchmark.runs.schema import Failure


def mark_not_run(run: Run, reason: str) -> None:
    """A run skipped because its warm-start base failed: unless its directory already holds a
    finished run of exactly this spec, claim it (old results of other code are set aside) and
    record the reason in failed.json, so neither status nor the report shows stale numbers."""
    spec, paths = run.spec, run.paths
    if compare_spec(paths, spec).action == "same" and paths.record.exists():
        return
    lock = RunLock(paths.root)
    if lock.acquire() is not None:
        return  # another live launcher works on it and will record its own outcome
    try:
        note = claim_spec(paths, spec)
        if note:
            warn(f"{run.name}: {note}")
        atomic_write_json(paths.failed, Failure(reason=reason, kind="not-run",
                                                host=platform.node(), time=time.time()).as_dict())
    finally:
        lock.release()


def record_failure(paths: RunPaths, err: BaseException) -> None:
    """failed.json (and error.txt with the traceback of a crash); best effort, never raises."""
    if isinstance(err, KeyboardInterrupt | SystemExit | LockLost):
        return  # not a failure of the run: resuming continues it
    kind = "non-finite" if isinstance(err, RunFailed) else \
        "setting" if isinstance(err, UserError) else "crash"
    failure = Failure(reason=one_line(err), kind=kind, epoch=getattr(err, "epoch", None),
                      batch=getattr(err, "batch", None), host=platform.node(), time=time.time())
    try:
        if kind == "crash":
            atomic_write_text(paths.error, traceback.format_exc())
            failure.traceback = paths.error.name
        atomic_write_json(paths.failed, failure.as_dict())
    except OSError:
        pass  # e.g. the disk is full: the caller still reports the failure


def one_line(err: BaseException) -> str:
    """An exception as one line: the message of ours, type and first line of others."""
    if isinstance(err, UserError | RunFailed):
        return str(err)
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__

