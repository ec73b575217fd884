"""The kill-and-resume step: a run killed after its first epoch resumes from its checkpoint
exactly, keeps its first log line, and (on a CPU) ends where a run never killed ends."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from benchmark.common.fileio import read_jsonl
from benchmark.core.datasets.base import Splits
from benchmark.core.protocol import Protocol
from benchmark.core.train_state import EpochLog
from benchmark.core.trainer import Trainer
from benchmark.devtools.gpucheck.checks import Check, Size
from benchmark.devtools.gpucheck.workload import protocol_for, random_splits
from benchmark.devtools.perf import timing_trainer


class Killed(Exception):
    """Raised from `after_epoch` to stop a run as a kill would (checkpoint written)."""


def differences(a: Trainer, b: Trainer) -> list[str]:
    """Which of the model weights and optimizer state differ between two trainers."""
    out = []
    if any(not torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                 b.model.state_dict().values(), strict=True)):
        out.append("the weights")
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    if sa.keys() != sb.keys() or any(not torch.equal(sa[k][n], sb[k][n])
                                     for k in sa for n in sa[k]
                                     if isinstance(sa[k][n], torch.Tensor)):
        out.append("the optimizer state")
    return out


def run_killed_after_first_epoch(p: Protocol, splits: Splits, device: torch.device,
                                 root: Path) -> tuple[Trainer, str]:
    """A PGD-AT run in `root/killed` stopped after its first epoch: the trainer and the first
    epoch's log line."""
    logged: list[str] = []

    def kill(line: EpochLog) -> None:
        logged.append(json.dumps(line.as_dict()))
        raise Killed

    killed = timing_trainer("pgd_at", p, splits, device, root / "killed", after_epoch=kill)
    with contextlib.suppress(Killed):
        killed.run()
    if len(logged) != 1:
        raise RuntimeError("the run was not killed after its first epoch")
    return killed, logged[0]


def resume_and_finish(p: Protocol, splits: Splits, device: torch.device, root: Path,
                      killed: Trainer, first_line: str) -> tuple[Trainer, int]:
    """Resume the killed run: its state must come back exactly, then it trains to the end
    keeping its first log line. The resumed trainer and its epochs."""
    resumed = timing_trainer("pgd_at", p, splits, device, root / "killed")
    resumed._resume_or_start()  # what run() does first: exact on any device
    lost = differences(killed, resumed)
    if lost:
        raise RuntimeError(f"resuming did not restore {', '.join(lost)}")
    summary = resumed.run()
    lines = [json.dumps(r) for r in read_jsonl(resumed.paths.log)]
    if summary.epochs != 2 or len(lines) != 2 or lines[0] != first_line:
        raise RuntimeError(f"the resumed run trained {summary.epochs} epochs with "
                           f"{len(lines)} log lines; its first line "
                           f"{'survived' if lines[:1] == [first_line] else 'was redone'}")
    return resumed, summary.epochs


def resume_check(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    """The kill-and-resume step."""
    def work(check: Check) -> None:
        """A 2-epoch run killed after epoch 1 resumes: its weights and optimizer state come back
        bit for bit, epoch 1's log line (with its timing) survives, one more epoch is trained;
        on a CPU the final weights equal a run never killed."""
        p = protocol_for("quick", size, epochs=2)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        killed, first_line = run_killed_after_first_epoch(p, splits, device, root)
        resumed, epochs = resume_and_finish(p, splits, device, root, killed, first_line)
        straight = timing_trainer("pgd_at", p, splits, device, root / "straight")
        straight.run()
        diff = max(float((a - b).abs().max()) for a, b in zip(
            resumed.model.state_dict().values(), straight.model.state_dict().values(),
            strict=True) if a.is_floating_point())
        if device.type == "cpu" and diff != 0:
            raise RuntimeError(f"resumed weights differ from an uninterrupted run by {diff:g}")
        check.numbers.update(epochs=epochs, max_weight_difference=diff)
    return work
