"""The `workers per gpu` step: PGD-AT training throughput of one worker process alone and of
two sharing the device, per model, so the docs can say how many workers per GPU pay
(`fairbench run --workers`)."""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from benchmark.catalog import get_protocol
from benchmark.core.protocol import Protocol
from benchmark.devtools.gpucheck.checks import Check, Size
from benchmark.devtools.gpucheck.workload import protocol_for, random_splits

# model -> (dataset, preset) whose quick runs it serves: FMNIST's CNN, the 32x32 presets' ResNet
WORKER_MODELS = {"small_cnn": "fmnist", "preact_resnet18": "cifar10"}


def _protocol(model: str, size: Size) -> Protocol:
    if WORKER_MODELS[model] == "cifar10":
        return protocol_for("quick", size, model)
    p = get_protocol("fmnist", "quick")
    return replace(p, batch_size=2, train_steps=3) if size.tiny else p


def _splits(p: Protocol, n: int) -> Any:
    from benchmark.devtools.perf import synthetic_splits, train_subset

    per_class = math.ceil(n / 10)
    if p.dataset == "cifar10":
        return random_splits(p, n)
    return train_subset(synthetic_splits(p.dataset, replace(p, train_per_class=per_class)), n)


def worker_loop(device: str, threads: int, size: Size, conn: Any) -> None:
    """A worker process: for each model name it is sent, one timed PGD-AT epoch (the first one
    for a model also warms up); it answers with the epoch's seconds."""
    import tempfile
    from pathlib import Path

    from benchmark.devtools.gpucheck.training import timed_epoch
    from benchmark.devtools.perf import timing_trainer

    torch.set_num_threads(threads)
    trainers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        while (model := conn.recv()) is not None:
            if model not in trainers:
                p = _protocol(model, size)
                trainers[model] = timing_trainer("pgd_at", p, _splits(p, size.worker_images),
                                                 torch.device(device), Path(tmp) / model)
                timed_epoch(trainers[model], 0)  # warm-up: CUDA context, cuDNN autotuning
            conn.send(timed_epoch(trainers[model], 0).seconds)


def _together(conns: list[Any], model: str) -> float:
    """Wall seconds for every worker in `conns` to train one epoch of `model` at once."""
    t0 = time.perf_counter()
    for conn in conns:
        conn.send(model)
    for conn in conns:
        conn.recv()
    return time.perf_counter() - t0


def workers_check(size: Size, device: torch.device) -> Callable[[Check], None]:
    """The step: per model, images/s of one worker alone and of two at once, their ratio, and
    PGD-AT runs of the model's quick preset per hour (training loop only)."""
    def work(check: Check) -> None:
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(2)]
        threads = max(1, torch.get_num_threads() // 2)
        procs = [ctx.Process(target=worker_loop, args=(str(device), threads, size, child),
                             daemon=True) for _, child in pipes]
        for proc in procs:
            proc.start()
        conns = [parent for parent, _ in pipes]
        try:
            for model in WORKER_MODELS:
                _together(conns, model)  # both warm up
                one = size.worker_images / _together(conns[:1], model)
                two = 2 * size.worker_images / _together(conns, model)
                quick = get_protocol(WORKER_MODELS[model], "quick")
                run_images = quick.train_per_class * 10 * quick.epochs
                check.numbers.update({f"{model}_one_worker_images_per_second": one,
                                      f"{model}_two_workers_images_per_second": two,
                                      f"{model}_two_workers_speedup": two / one,
                                      f"{model}_quick_runs_per_hour_one_worker":
                                          3600 * one / run_images,
                                      f"{model}_quick_runs_per_hour_two_workers":
                                          3600 * two / run_images})
        finally:
            for conn in conns:
                conn.send(None)
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
    return work
