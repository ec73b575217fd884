"""What a launch reports: each failed run as one line with the fix, the dependents of a failed
base as not run, and the time left."""

from __future__ import annotations

from collections.abc import Callable

from benchmark.common.errors import RunFailed, UserError
from benchmark.runs.failure import mark_not_run, one_line
from benchmark.runs.job import Run
from benchmark.runs.lock_file import LockHeld, LockLost

Report = Callable[[Run, str], None]


def held_message(held: LockHeld) -> str:
    """The note for a run another live launcher holds (it is retried last, waiting)."""
    return f"held by {held.owner.describe()}; running the others first"


def failure_message(run: Run, err: BaseException) -> str:
    """One line saying what went wrong in a run and what to do about it."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, RunFailed):
        return f"failed: {err} (recorded in {run.paths.failed}; the run gives no numbers)"
    if isinstance(err, LockLost):
        return f"stopped: {err}; the process that holds the lock now continues the run"
    if isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        return (f"{type(err).__name__}: {err.strerror or err}{where}; fix the disk or "
                f"permissions (or pass --results DIR elsewhere), then rerun to resume")
    return (f"{one_line(err)} (traceback in {run.paths.error}; rerun the same command to "
            f"resume)")


class FailureLog:
    """The failures of one launch, reported as they happen; both launchers share its rules."""

    def __init__(self, on_error: Report | None) -> None:
        self.items: list[tuple[Run, str]] = []
        self.names: set[str] = set()
        self.on_error = on_error

    def fail(self, run: Run, message: str) -> None:
        self.items.append((run, message))
        self.names.add(run.name)
        if self.on_error:
            self.on_error(run, message)

    def skipped(self, run: Run) -> bool:
        """True (and recorded as a failure, in the run directory too) if the run's warm-start
        base or teacher failed."""
        failed = next((d for d in run.dependencies if d.name in self.names), None)
        if failed is None:
            return False
        what = "warm start" if failed is run.base else "teacher"
        reason = f"not run: its {what} {failed.name} failed"
        try:
            mark_not_run(run, reason)
        except (UserError, OSError):
            pass  # the launcher still reports the skip; status then shows the older state
        self.fail(run, reason)
        return True


REUSED_SECONDS = 2.0  # a run that took less found its record: it says nothing of the time left


def eta_text(done: int, total: int, elapsed: float, worked: list[float] | None = None,
             workers: int = 1) -> str:
    """ "3/36 runs done in 12 min; about 2 h 12 min left": from the mean time of the runs that
    trained or evaluated (`worked`: seconds per finished run; reused ones are left out), spread
    over `workers`; without `worked`, from the mean time per finished run."""
    def span(seconds: float) -> str:
        minutes = round(seconds / 60)
        return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"

    busy = [s for s in worked or () if s >= REUSED_SECONDS]
    per_run = (sum(busy) / len(busy) / workers if busy else float("nan")) if worked is not None \
        else (elapsed / done if done else float("nan"))
    left = per_run * (total - done)
    if left != left:  # nothing has worked yet: no estimate
        return f"{done}/{total} runs done in {span(elapsed)}"
    tail = f"; about {span(left)} left" if done and done < total else ""
    return f"{done}/{total} runs done in {span(elapsed)}{tail}"

