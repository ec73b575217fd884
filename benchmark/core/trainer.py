"""Trainer: the protocol-driven loop shared by every method.

Owns the optimizer, the per-epoch lr schedule, checkpoints (atomic, every epoch), resume, warm
starts, validation-based checkpoint selection, wall time (training loop only) and passes.
It never knows a method's name: the method object brings its loss and hooks.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from benchmark.common.errors import RunFailed, UserError, warn
from benchmark.common.fileio import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    load_state,
    read_jsonl,
)
from benchmark.common.memory import peak_mb, reset_peak
from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import Splits, TensorLoader
from benchmark.core.method import Method, TrainContext
from benchmark.core.models import build_model
from benchmark.core.protocol import Protocol
from benchmark.core.run_paths import RunPaths
from benchmark.core.train_state import EpochLog, EpochSteps, TrainState, TrainSummary
from benchmark.core.validation import validate


class Trainer:
    """Train one method under one protocol into one run directory (resumable)."""

    def __init__(self, *, method: Method, protocol: Protocol, splits: Splits, paths: RunPaths,
                 seed: int, device: torch.device, keep_epochs: set[int] | None = None,
                 warm_start_ckpt: Path | None = None, show_progress: bool = True,
                 teacher: nn.Module | None = None,
                 after_epoch: Callable[[EpochLog], None] | None = None) -> None:
        self.method, self.protocol, self.splits, self.paths = method, protocol, splits, paths
        self.seed, self.device = seed, device
        self.keep_epochs = set(keep_epochs or ())
        self.warm_start_ckpt = warm_start_ckpt
        self.teacher = teacher
        self.show_progress = show_progress
        self.after_epoch = after_epoch  # e.g. the lock's heartbeat, a progress line
        info = splits.info
        torch.manual_seed(seed)
        self.model = self._new_model()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=protocol.lr,
                                         momentum=protocol.momentum,
                                         nesterov=protocol.nesterov,
                                         weight_decay=protocol.weight_decay)
        self.state = TrainState()
        self._kept: nn.Module | None = None
        self.train_loader = TensorLoader(splits.train_x, splits.train_y, protocol.batch_size,
                                         device=device, shuffle=True, seed=seed,
                                         augment_with=(info.crop_padding, info.flip))
        self.val_loader = TensorLoader(splits.val_x, splits.val_y, protocol.eval_batch_size,
                                       device=device)

    def _new_model(self) -> nn.Module:
        """The protocol's model for this dataset on the device, in its memory format."""
        info = self.splits.info
        model = build_model(self.protocol.model, info.num_classes, info.shape).to(self.device)
        return model.to(memory_format=torch.channels_last) if self.protocol.channels_last \
            else model

    # --- checkpoints -------------------------------------------------------------------
    def _checkpoint(self) -> dict[str, Any]:
        """Everything a resume needs; `kept` holds the method's kept weights when they are not
        the model's (so a damaged model_last/model_best can be rebuilt from it)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "method": self.method.state_dict(), "state": vars(self.state).copy(),
                "kept": self.method.kept_weights(self.model)}

    def _restore(self, ckpt: dict[str, Any], *, own_run: bool) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        saved = TrainState(**ckpt["state"])
        if own_run:
            self.method.load_state_dict(ckpt["method"])
            self.state = saved
        else:  # warm start: our protocol's optimizer settings (a tuned run's weight decay is
            # not its base's), and the base's counters become the warm-start cost, not ours
            for group in self.optimizer.param_groups:
                group.update(momentum=self.protocol.momentum, nesterov=self.protocol.nesterov,
                             weight_decay=self.protocol.weight_decay)
            self.state = TrainState(epoch=saved.epoch, warm={
                "seconds": saved.seconds + saved.warm.get("seconds", 0.0),
                "passes": saved.forward + saved.backward + saved.warm.get("passes", 0),
                "epochs": saved.epoch})

    def _own_checkpoints(self) -> list[Path]:
        """This run's checkpoints, newest first: last, the one before it, then kept epochs."""
        kept = sorted(self.paths.root.glob("ckpt_epoch*.pt"),
                      key=lambda p: int(p.stem.removeprefix("ckpt_epoch") or -1), reverse=True)
        return [p for p in (self.paths.ckpt, self.paths.prev, *kept) if p.exists()]

    def _resume_or_start(self) -> None:
        """Resume from the newest intact checkpoint of this run, else warm-start, else start."""
        for path in self._own_checkpoints():
            try:
                ckpt = load_state(path)
            except Exception as err:  # noqa: BLE001 - damaged file: fall back to an older one
                warn(f"{path} is damaged ({type(err).__name__}); trying an older checkpoint")
                continue
            self._restore(ckpt, own_run=True)
            break
        else:
            if self.warm_start_ckpt is not None:
                try:
                    ckpt = load_state(self.warm_start_ckpt)
                except Exception as err:  # noqa: BLE001
                    raise UserError(f"cannot read the warm-start checkpoint "
                                    f"{self.warm_start_ckpt} ({type(err).__name__}); delete its "
                                    f"run directory to retrain the base") from None
                self._restore(ckpt, own_run=False)
        # drop log lines of epochs the checkpoint does not contain (killed mid-epoch)
        lines = [r for r in read_jsonl(self.paths.log, repair=True)
                 if r["epoch"] <= self.state.epoch]
        self.paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.paths.log, "".join(json.dumps(r) + "\n" for r in lines))

    # --- the loop ----------------------------------------------------------------------
    def lr_at(self, epoch: int) -> float:
        return self.method.lr_at(epoch, self.protocol)

    def kept_model(self) -> nn.Module:
        """The model the run keeps (validates, selects, saves): the trained model, or a copy
        holding the method's `kept_weights` (e.g. CFA's average) when it has them."""
        weights = self.method.kept_weights(self.model)
        if weights is None:
            return self.model
        if self._kept is None:  # a fresh model (a deep copy would carry the counter's hook)
            self._kept = self._new_model()
        self._kept.load_state_dict(weights)
        return self._kept

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.protocol.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run(self) -> TrainSummary:
        """Train until the method's end epoch (the protocol's last unless it fine-tunes for a
        fixed length); returns the training summary."""
        p = self.protocol
        self._resume_or_start()
        if 0 in self.keep_epochs and self.state.epoch == 0:
            atomic_torch_save(self.paths.epoch_ckpt(0), self._checkpoint())
        forward_model, ctx, counter = self.epoch_context()
        end = self.method.end_epoch(p)
        epochs = tqdm(range(self.state.epoch, end), initial=self.state.epoch, total=end,
                      desc=f"train {self.method.name}", leave=False,
                      disable=not self.show_progress)
        try:
            for epoch in epochs:
                self._train_epoch(epoch, forward_model, ctx, counter)
        finally:
            counter.detach()
        atomic_torch_save(self.paths.last, {"model": self.kept_model().state_dict(),
                                            "epoch": self.state.epoch})
        summary = self.summary()
        atomic_write_json(self.paths.done, summary.as_dict())
        return summary

    def epoch_context(self) -> tuple[nn.Module, TrainContext, PassCounter]:
        """(the model the loss sees (compiled if asked), the method's context, the attached
        passes counter): what `train_steps` needs; detach the counter when done."""
        counter = PassCounter().attach(self.model)
        forward_model = torch.compile(self.model) if self.protocol.compile else self.model
        ctx = TrainContext(protocol=self.protocol, num_classes=self.splits.info.num_classes,
                           device=self.device, counter=counter, val_loader=self.val_loader,
                           validator=lambda m: validate(m, self.splits, self.protocol,
                                                        self.device), teacher=self.teacher)
        return forward_model, ctx, counter

    def _train_epoch(self, epoch: int, model: nn.Module, ctx: TrainContext,
                     counter: PassCounter) -> None:
        self._finish_epoch(self.train_steps(epoch, model, ctx, counter))

    def train_steps(self, epoch: int, model: nn.Module, ctx: TrainContext,
                    counter: PassCounter) -> EpochSteps:
        """One epoch of training updates (what "training seconds" time; `make perf` times this
        very function against a bare PyTorch loop)."""
        torch.manual_seed(self.seed * 100_003 + epoch)  # resume-exact randomness per epoch
        lr = self.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        ctx.epoch, ctx.log = epoch, {}
        counter.forward = counter.backward = 0
        counter.enabled = True
        self.train_loader.set_epoch(epoch)
        reset_peak(self.device)
        t0 = time.perf_counter()
        logged = dict(self.method.on_epoch_start(self.model, ctx))
        self.model.train()
        loss_sum, updates, skipped = 0.0, 0, 0
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}", leave=False,
                   disable=not self.show_progress)
        for i, (x, y) in enumerate(bar):
            ctx.batch = i
            if self.protocol.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                loss = self.method.loss(model, x, y, ctx)
            if loss is None:
                skipped += 1
                continue
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RunFailed(f"non-finite loss ({value})", epoch=epoch + 1, batch=i)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += value
            updates += 1
        if not all(bool(t.isfinite().all()) for t in self.model.state_dict().values()
                   if t.is_floating_point()):
            raise RunFailed("non-finite weights after the epoch's last update", epoch=epoch + 1,
                            batch=ctx.batch)
        logged.update(self.method.on_epoch_end(self.model, ctx))
        seconds = time.perf_counter() - t0
        counter.enabled = False
        return EpochSteps(epoch=epoch, lr=lr, loss_sum=loss_sum, updates=updates,
                          skipped=skipped, seconds=seconds, forward=counter.forward,
                          backward=counter.backward, method_log={**ctx.log, **logged},
                          peak_memory_mb=peak_mb(self.device))

    def _finish_epoch(self, steps: EpochSteps) -> None:
        """Count the epoch, validate (timed), keep the best model, log, then checkpoint (the
        log line comes first: a kill in between resumes from the previous checkpoint and drops
        the line)."""
        st = self.state
        st.epoch, st.seconds = steps.epoch + 1, st.seconds + steps.seconds
        st.peak_memory_mb = max(st.peak_memory_mb, steps.peak_memory_mb)
        st.forward, st.backward = st.forward + steps.forward, st.backward + steps.backward
        t0 = time.perf_counter()
        kept = self.kept_model()
        val = validate(kept, self.splits, self.protocol, self.device)
        val_seconds = time.perf_counter() - t0
        score = val[self.protocol.select_on]
        is_best = score > st.best_score
        if is_best:
            st.best_score, st.best_epoch = score, st.epoch
            atomic_torch_save(self.paths.best, {"model": kept.state_dict(), "epoch": st.epoch})
        line = EpochLog(epoch=st.epoch, lr=steps.lr, loss=steps.loss_sum / max(steps.updates, 1),
                        updates=steps.updates, skipped_batches=steps.skipped,
                        seconds=steps.seconds, passes=steps.forward + steps.backward, val=val,
                        best=is_best, method=steps.method_log, val_seconds=val_seconds)
        with open(self.paths.log, "a") as f:
            f.write(json.dumps(line.as_dict()) + "\n")
        self.save_checkpoints()
        if self.after_epoch is not None:
            self.after_epoch(line)

    def save_checkpoints(self) -> None:
        """ckpt_last.pt (the previous one kept as ckpt_prev.pt) and, at kept epochs,
        ckpt_epoch<k>.pt."""
        checkpoint = self._checkpoint()
        if self.state.epoch in self.keep_epochs:  # before ckpt_last: a resume never skips it
            atomic_torch_save(self.paths.epoch_ckpt(self.state.epoch), checkpoint)
        if self.paths.ckpt.exists():  # the previous epoch's state survives a damaged write
            os.replace(self.paths.ckpt, self.paths.prev)
        atomic_torch_save(self.paths.ckpt, checkpoint)

    def summary(self) -> TrainSummary:
        st = self.state
        own_passes = st.forward + st.backward
        warm = st.warm or {"seconds": 0.0, "passes": 0, "epochs": 0}
        return TrainSummary(
            seconds=st.seconds, passes=own_passes, forward_passes=st.forward,
            backward_passes=st.backward, epochs=st.epoch - warm["epochs"],
            best_epoch=st.best_epoch, best_val=st.best_score,
            warm_start_seconds=warm["seconds"], warm_start_passes=warm["passes"],
            seconds_with_warm_start=st.seconds + warm["seconds"],
            passes_with_warm_start=own_passes + warm["passes"],
            peak_memory_mb=st.peak_memory_mb or None)
