"""The submitit launcher: each wave is one job array (SLURM, or local subprocesses for tests);
a timed-out job is requeued and resumes from its last checkpoint."""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.planning.outcomes import FailureLog, Report
from benchmark.runs.job import Run
from benchmark.runs.run import run_job


def _last_error_line(text: str) -> str:
    """The remote exception's own line ("...UserError: message") from submitit's report."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt|Failed)\b", ln)]
    line = errors[-1] if errors else (lines[-1] if lines else "")
    return re.sub(r"^[\w.]*(UserError|RunFailed): ", "", line)


class _Checkpointable:
    """submitit callable whose `checkpoint` resubmits the same run on preemption/timeout."""

    def __call__(self, run: Run) -> str:
        run_job(run)  # waits for a run held by another live launcher
        return run.name

    def checkpoint(self, run: Run) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, run)  # resumes from ckpt_last.pt


def run_submitit(waves: Sequence[Sequence[Run]], folder: Path, *, cluster: str | None = None,
                 parameters: dict[str, Any] | None = None,
                 on_error: Report | None = None) -> list[tuple[Run, str]]:
    """Submit each wave as a job array and wait for it. cluster=None lets submitit pick SLURM
    when available; cluster="local" runs the same code in local subprocesses (used by tests)."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**(parameters or {}))
    log = FailureLog(on_error)
    for wave in waves:
        runnable = [run for run in wave if not log.skipped(run)]
        if not runnable:
            continue
        with executor.batch():
            handles = [(run, executor.submit(_Checkpointable(), run)) for run in runnable]
        for run, handle in handles:
            try:
                handle.result()
            except Exception as err:  # noqa: BLE001 - report every failed run, keep going
                log.fail(run, _last_error_line(str(err)) or traceback.format_exc(1))
    return log.items

