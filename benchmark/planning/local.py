"""Launchers: run planned jobs locally in sequence, or through submitit (SLURM or local).

Jobs of one wave are independent; a wave starts when the previous one has finished. Both
launchers follow the same rules: a failed run does not stop the others, the dependents of a
failed base (`run.base`, resolved in the plan) are skipped, and a run held by another live
launcher (its lock) is not run twice. With submitit each wave is one job array; on SLURM a
timed-out run is requeued and resumes from its last checkpoint (run_job is idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from benchmark.planning.outcomes import (
    FailureLog,
    Report,
    eta_text,
    failure_message,
    held_message,
)
from benchmark.runs.job import Run
from benchmark.runs.lock_file import LockHeld
from benchmark.runs.run import run_job


def run_local(waves: Sequence[Sequence[Run]], on_error: Report | None = None,
              on_note: Report | None = None,
              on_progress: Callable[[str], None] | None = None) -> list[tuple[Run, str]]:
    """Run every run in this process; returns the (run, error) failures. `on_progress` gets a
    line after every finished run (runs done, time, time left).

    Runs held by another live launcher are deferred to the end of their wave, then waited for
    (when the holder finishes, its record is reused; if it died, this launcher takes over).
    """
    log = FailureLog(on_error)

    def note(run: Run, message: str) -> None:
        if on_note:
            on_note(run, message)

    def attempt(run: Run, block: bool) -> bool:
        """Run one run; False if it is held by another launcher (block=False only)."""
        started = time.perf_counter()
        try:
            run_job(run, block=block,
                    on_wait=lambda owner: note(run, f"waiting for {owner.describe()}"))
        except LockHeld as held:
            note(run, held_message(held))
            return False
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - a failed run must not stop the rest
            log.fail(run, failure_message(run, err))
        if on_progress is not None:
            finished.append(time.perf_counter() - started)
            on_progress(eta_text(len(finished), total, time.perf_counter() - t0, finished))
        return True

    total, t0 = sum(map(len, waves)), time.perf_counter()
    finished: list[float] = []  # seconds of each finished run
    for wave in waves:
        deferred = [run for run in wave
                    if not log.skipped(run) and not attempt(run, block=False)]
        for run in deferred:
            attempt(run, block=True)
    return log.items


