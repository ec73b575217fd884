"""Launchers: run planned jobs locally in sequence, or through submitit (SLURM or local).

Jobs of one wave are independent; a wave starts when the previous one has finished. Both
launchers follow the same rules: a failed run does not stop the others, the dependents of a
failed base (`job.base`, resolved in the plan) are skipped, and a run held by another live
launcher (its lock) is not run twice. With submitit each wave is one job array; on SLURM a
timed-out job is requeued and resumes from its last checkpoint (run_job is idempotent).
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import RunFailed, UserError
from benchmark.job import Job, mark_not_run, one_line, run_job
from benchmark.lock import LockHeld, LockLost

Report = Callable[[Job, str], None]


def failure_message(job: Job, err: BaseException) -> str:
    """One line saying what went wrong in a run and what to do about it."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, RunFailed):
        return f"failed: {err} (recorded in {job.paths().failed}; the run gives no numbers)"
    if isinstance(err, LockLost):
        return f"stopped: {err}; the process that holds the lock now continues the run"
    if isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        return (f"{type(err).__name__}: {err.strerror or err}{where}; fix the disk or "
                f"permissions (or pass --results DIR elsewhere), then rerun to resume")
    return (f"{one_line(err)} (traceback in {job.paths().error}; rerun the same command to "
            f"resume)")


class FailureLog:
    """The failures of one launch, reported as they happen; both launchers share its rules."""

    def __init__(self, on_error: Report | None) -> None:
        self.items: list[tuple[Job, str]] = []
        self.names: set[str] = set()
        self.on_error = on_error

    def fail(self, job: Job, message: str) -> None:
        self.items.append((job, message))
        self.names.add(job.name)
        if self.on_error:
            self.on_error(job, message)

    def skipped(self, job: Job) -> bool:
        """True (and recorded as a failure, in the run directory too) if the job's warm-start
        base failed."""
        if job.base is None or job.base not in self.names:
            return False
        reason = f"not run: its warm start {job.base} failed"
        try:
            mark_not_run(job, reason)
        except (UserError, OSError):
            pass  # the launcher still reports the skip; status then shows the older state
        self.fail(job, reason)
        return True


def eta_text(done: int, total: int, elapsed: float) -> str:
    """ "3/36 runs done in 12 min; about 2 h 12 min left" (from the mean time per run)."""
    def span(seconds: float) -> str:
        minutes = round(seconds / 60)
        return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"

    left = elapsed / done * (total - done) if done else float("nan")
    tail = f"; about {span(left)} left" if done and done < total else ""
    return f"{done}/{total} runs done in {span(elapsed)}{tail}"


def run_local(waves: Sequence[Sequence[Job]], on_error: Report | None = None,
              on_note: Report | None = None,
              on_progress: Callable[[str], None] | None = None) -> list[tuple[Job, str]]:
    """Run every job in this process; returns the (job, error) failures. `on_progress` gets a
    line after every finished job (runs done, time, time left).

    Runs held by another live launcher are deferred to the end of their wave, then waited for
    (when the holder finishes, its record is reused; if it died, this launcher takes over).
    """
    log = FailureLog(on_error)

    def note(job: Job, message: str) -> None:
        if on_note:
            on_note(job, message)

    def attempt(job: Job, block: bool) -> bool:
        """Run one job; False if it is held by another launcher (block=False only)."""
        try:
            run_job(job, block=block,
                    on_wait=lambda owner: note(job, f"waiting for {owner.describe()}"))
        except LockHeld as held:
            note(job, f"held by {held.owner.describe()}; running the others first")
            return False
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - a failed run must not stop the rest
            log.fail(job, failure_message(job, err))
        if on_progress is not None:
            finished.append(job)
            on_progress(eta_text(len(finished), total, time.perf_counter() - t0))
        return True

    total, finished, t0 = sum(map(len, waves)), [], time.perf_counter()
    for wave in waves:
        deferred = [job for job in wave
                    if not log.skipped(job) and not attempt(job, block=False)]
        for job in deferred:
            attempt(job, block=True)
    return log.items


def _last_error_line(text: str) -> str:
    """The remote exception's own line ("...UserError: message") from submitit's report."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt|Failed)\b", ln)]
    line = errors[-1] if errors else (lines[-1] if lines else "")
    return re.sub(r"^[\w.]*(UserError|RunFailed): ", "", line)


class _Checkpointable:
    """submitit callable whose `checkpoint` resubmits the same job on preemption/timeout."""

    def __call__(self, job: Job) -> str:
        run_job(job)  # waits for a run held by another live launcher
        return job.name

    def checkpoint(self, job: Job) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)  # resumes from ckpt_last.pt


def run_submitit(waves: Sequence[Sequence[Job]], folder: Path, *, cluster: str | None = None,
                 parameters: dict[str, Any] | None = None,
                 on_error: Report | None = None) -> list[tuple[Job, str]]:
    """Submit each wave as a job array and wait for it. cluster=None lets submitit pick SLURM
    when available; cluster="local" runs the same code in local subprocesses (used by tests)."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**(parameters or {}))
    log = FailureLog(on_error)
    for wave in waves:
        runnable = [job for job in wave if not log.skipped(job)]
        if not runnable:
            continue
        with executor.batch():
            handles = [(job, executor.submit(_Checkpointable(), job)) for job in runnable]
        for job, handle in handles:
            try:
                handle.result()
            except Exception as err:  # noqa: BLE001 - report every failed job, keep going
                log.fail(job, _last_error_line(str(err)) or traceback.format_exc(1))
    return log.items
