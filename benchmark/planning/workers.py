"""Parallel local runs (`--workers N`, `--devices LIST|all`): one process per worker, each
pinned to a device (several workers may share one).

The launcher schedules: a run goes to an idle worker as soon as its own warm-start base has
finished (not when the whole wave has); the dependents of a failed base are reported as not run;
a run held by another launcher is retried last, waiting for it. Workers train with `run_job`, so
locks, records and failure rules are those of the sequential launcher. Ctrl-C or a kill of the
launcher stops every worker (on Linux a worker also dies with its launcher); a stopped run keeps
its checkpoints and resumes on the next launch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from benchmark.planning.outcomes import (
    FailureLog,
    Report,
    eta_text,
    failure_message,
    held_message,
)
from benchmark.runs.job import Job, Run, resolve

POLL_SECONDS = 1.0  # how often the launcher checks that its workers are alive


@dataclass(frozen=True)
class Outcome:
    """What a worker reports for one run: "done", "failed" (with the message) or "held"."""

    name: str
    status: str
    message: str = ""


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends this process SIGTERM when the launcher dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the launcher's own shutdown stops its workers
    if os.getppid() != parent:  # it died before the line above
        raise SystemExit(0)


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds run_job: its lock is released, nothing is failed


def worker_main(device: str | None, threads: int, parent: int, tasks: Any, results: Any
                ) -> None:
    """A worker process: run each (job, block) it is sent until it gets None."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C reaches every worker: exit quietly
    _die_with_parent(parent)
    import torch

    from benchmark.runs.failure import one_line
    from benchmark.runs.lock_file import LockHeld
    from benchmark.runs.run import run_job

    torch.set_num_threads(threads)
    if device is not None and device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))  # libraries that use the current device
    while (task := tasks.get()) is not None:
        job, block, key = task
        try:
            run = resolve(replace(job, device=device) if device else job)
        except Exception as err:  # noqa: BLE001 - e.g. a teacher file moved since planning
            results.put(Outcome(job.name, "failed", f"cannot be set up again in its worker: "
                                                    f"{one_line(err)}; rerun the command"))
            continue
        if run.spec.key != key:  # the code or a file changed between planning and now
            results.put(Outcome(run.name, "failed", f"its run key changed since planning "
                                                    f"({key} -> {run.spec.key}); rerun"))
            continue
        try:
            run_job(run, block=block)
            results.put(Outcome(run.name, "done"))
        except LockHeld as held:
            results.put(Outcome(run.name, "held", held_message(held)))
        except Exception as err:  # noqa: BLE001 - a failed run must not stop the worker
            results.put(Outcome(run.name, "failed", failure_message(run, err)))


class Pool:
    """The worker processes, each with its own task queue (so the launcher knows who is idle)."""

    def __init__(self, devices: Sequence[str | None], threads: int) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that may hold CUDA or threads
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in devices]
        self.procs = [ctx.Process(target=worker_main, daemon=True,
                                  args=(d, threads, os.getpid(), q, self.results))
                      for d, q in zip(devices, self.tasks, strict=True)]
        for proc in self.procs:
            proc.start()
        self.busy: dict[int, Run] = {}
        self.sent: dict[str, float] = {}  # when each run was sent (for the time left)

    def idle(self) -> list[int]:
        return [i for i in range(len(self.procs)) if i not in self.busy]

    def send(self, worker: int, run: Run, block: bool) -> None:
        self.busy[worker] = run
        self.sent[run.name] = time.perf_counter()
        self.tasks[worker].put((job_for_worker(run.job), block, run.spec.key))

    def alive(self) -> bool:
        return any(q is not None for q in self.tasks)

    def next_outcome(self) -> tuple[Run, Outcome]:
        """The next finished run; a worker that died mid-run (e.g. killed for memory) fails its
        run and is not given another."""
        while True:
            try:
                outcome = self.results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                for i, run in list(self.busy.items()):
                    if not self.procs[i].is_alive():
                        del self.busy[i]
                        self.tasks[i] = None
                        code = self.procs[i].exitcode
                        return run, Outcome(run.name, "failed", f"its worker process died "
                                            f"(exit code {code}); rerun the command to resume")
                continue
            worker = next(i for i, r in self.busy.items() if r.name == outcome.name)
            return self.busy.pop(worker), outcome

    def close(self) -> None:
        """Stop every worker: a clean exit when idle, SIGTERM (then SIGKILL) when not."""
        for q in self.tasks:
            if q is not None:
                q.put(None)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            if proc.is_alive() and self.busy:
                proc.terminate()
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()


def run_parallel(waves: Sequence[Sequence[Run]], devices: Sequence[str | None], threads: int,
                 on_error: Report | None = None, on_note: Report | None = None,
                 on_progress: Callable[[str], None] | None = None) -> list[tuple[Run, str]]:
    """Run every run on len(devices) workers; returns the (run, error) failures. `on_note` hears
    of a run held by another launcher (retried last, waiting for it)."""
    log = FailureLog(on_error)
    pending = [run for wave in waves for run in wave]
    held: list[Run] = []
    finished: set[str] = set()
    worked: list[float] = []  # seconds of each finished run, from sending it to its outcome
    total, t0 = len(pending), time.perf_counter()
    pool = Pool(devices, threads)

    def settle(run: Run) -> None:
        finished.add(run.name)
        now = time.perf_counter()
        worked.append(now - pool.sent.pop(run.name, now))
        if on_progress is not None:
            on_progress(eta_text(len(finished), total, now - t0, worked, len(devices)))

    try:
        while pending or held or pool.busy:
            for run in [r for r in pending if r.dependencies and log.skipped(r)]:
                pending.remove(run)
                settle(run)
            _dispatch(pool, pending, held, finished)
            if not pool.busy:  # nothing could start: every worker died
                for run in pending + held:
                    log.fail(run, "not run: every worker process died; rerun the command")
                break
            run, outcome = pool.next_outcome()
            if outcome.status == "held":
                held.append(run)
                if on_note is not None:
                    on_note(run, outcome.message)
                continue
            if outcome.status == "failed":
                log.fail(run, outcome.message)
            settle(run)
    finally:
        pool.close()
    return log.items


def _dispatch(pool: Pool, pending: list[Run], held: list[Run], finished: set[str]) -> None:
    """Send ready runs (base finished) to idle workers, in plan order; runs held by another
    launcher go last, waiting for it."""
    for worker in [i for i in pool.idle() if pool.tasks[i] is not None]:
        ready = next((r for r in pending if _ready(r, finished)), None)
        if ready is not None:
            pending.remove(ready)
            pool.send(worker, ready, block=False)
        elif held and not any(_ready(r, finished) for r in pending):
            pool.send(worker, held.pop(0), block=True)


def _ready(run: Run, finished: set[str]) -> bool:
    return all(dep.name in finished for dep in run.dependencies)


def worker_devices(devices: Sequence[str], workers: int) -> list[str | None]:
    """The device of each worker: `devices` in turn (several workers may share one); no
    devices: each worker picks the default one."""
    if not devices:
        return [None] * workers
    return [devices[i % len(devices)] for i in range(workers)]


def job_for_worker(job: Job) -> Job:
    """Workers print one plain line per epoch (bars of several processes would clash)."""
    return replace(job, show_progress=False, epoch_lines=True) if job.show_progress else job
