"""Launchers: run planned jobs locally in sequence, or through submitit (SLURM or local).

Jobs of one wave are independent; a wave starts when the previous one has finished. With
submitit each wave is one job array; on SLURM a timed-out job is requeued and resumes from its
last checkpoint (run_job is idempotent).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.job import Job, base_job, run_job


def run_local(waves: Sequence[Sequence[Job]], on_error: Callable[[Job, str], None] | None = None
              ) -> list[tuple[Job, str]]:
    """Run every job in this process; a failed job does not stop the others (except its
    dependents). Returns the (job, error) failures."""
    failures: list[tuple[Job, str]] = []
    failed_methods: set[tuple[str, int]] = set()

    def fail(job: Job, message: str) -> None:
        failures.append((job, message))
        failed_methods.add((job.method, job.seed))
        if on_error:
            on_error(job, message)

    for wave in waves:
        for job in wave:
            base = base_job(job, job.make_method(), job.protocol())
            if base is not None and (base[0].method, job.seed) in failed_methods:
                fail(job, f"not run: its warm start {base[0].name} failed")
                continue
            try:
                run_job(job)
            except UserError as err:
                fail(job, str(err))
            except Exception as err:  # noqa: BLE001 - a crash in one run must not stop the rest
                log = job.paths().root / "error.txt"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc())
                first = (str(err).strip().splitlines() or [""])[0]
                fail(job, f"{type(err).__name__}: {first} (traceback in {log}; rerun the same "
                          f"command to resume)")
    return failures


def _last_error_line(text: str) -> str:
    """The remote exception's own line ("...UserError: message") from submitit's report."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", ln)]
    line = errors[-1] if errors else (lines[-1] if lines else "")
    return line.split("UserError: ", 1)[-1]


class _Checkpointable:
    """submitit callable whose `checkpoint` resubmits the same job on preemption/timeout."""

    def __call__(self, job: Job) -> str:
        run_job(job)
        return job.name

    def checkpoint(self, job: Job) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)  # resumes from ckpt_last.pt


def run_submitit(waves: Sequence[Sequence[Job]], folder: Path, *, cluster: str | None = None,
                 parameters: dict[str, Any] | None = None) -> list[tuple[Job, str]]:
    """Submit each wave as a job array and wait for it. cluster=None lets submitit pick SLURM
    when available; cluster="local" runs the same code in local subprocesses (used by tests)."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**(parameters or {}))
    failures: list[tuple[Job, str]] = []
    for wave in waves:
        with executor.batch():
            handles = [(job, executor.submit(_Checkpointable(), job)) for job in wave]
        for job, handle in handles:
            try:
                handle.result()
            except Exception as err:  # noqa: BLE001 - report every failed job, keep going
                failures.append((job, _last_error_line(str(err)) or traceback.format_exc(1)))
    return failures
