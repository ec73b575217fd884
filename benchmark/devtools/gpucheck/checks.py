"""The model of a GPU-check step: how much work it does (Size), its outcome (Check), a step
that cannot run here (Skipped), and running one step so the others go on whatever happens."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Size:
    """How much work each step does (full size on a GPU, `--tiny` on a CPU)."""

    train_images: dict[str, int]     # training images per timed epoch, per model
    per_class: int                   # evaluation and validation points per class
    tiny: bool                       # tiny settings (protocol_for), eager torch.compile
    worker_images: int               # images per timed epoch of the `workers per gpu` step


# sized for about 5 minutes on one recent data-centre GPU (docs/speed.md, the arithmetic)
FULL = Size(train_images={"preact_resnet18": 128 * 8, "wrn_34_10": 128 * 2}, per_class=5,
            tiny=False, worker_images=128 * 8)
TINY = Size(train_images={"preact_resnet18": 4, "wrn_34_10": 2}, per_class=1, tiny=True,
            worker_images=4)  # two updates of batch 2 (wrn_34_10: one)
DEFAULT_BUDGET_SECONDS = 300.0       # --budget: later steps are skipped once it is spent


@dataclass
class Check:
    """One step's outcome: passed, failed (with the error) or skipped (with why)."""

    name: str
    status: str = "failed"
    seconds: float = 0.0
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Skipped(Exception):
    """A step that cannot run on this machine (e.g. no CIFAR-10 on disk); not a failure."""


@dataclass
class Budget:
    """The check's time budget (None: none), read between steps: a running step finishes, and
    the first step always runs (a check that ran nothing would prove nothing)."""

    seconds: float | None
    start: float = field(default_factory=time.perf_counter)

    def spent(self) -> bool:
        return self.seconds is not None and time.perf_counter() - self.start > self.seconds


def run_check(name: str, checks: list[Check], work: Callable[[Check], None],
              budget: Budget | None = None) -> None:
    """Run step `name` (`work` fills its numbers) and append its outcome to `checks`: passed,
    skipped (also when the time budget is spent: never run, never failed), or failed with the
    error's first line and a short traceback; never raises."""
    if budget is not None and checks and budget.spent():
        checks.append(Check(name, "skipped", error=f"time budget of {budget.seconds:.0f} s "
                                                   f"spent (--budget SECONDS, 0 for none)"))
        return
    check = Check(name)
    t0 = time.perf_counter()
    try:
        work(check)
        check.status = "passed"
    except Skipped as why:
        check.status, check.error = "skipped", str(why)
    except Exception as err:  # noqa: BLE001 - every step is reported, the others go on
        check.error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        check.numbers["traceback"] = traceback.format_exc(limit=4)
    check.seconds = time.perf_counter() - t0
    checks.append(check)
