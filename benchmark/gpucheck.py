"""`make gpu-check`: ten minutes on one GPU that prove the CIFAR path and measure it.

    python -m benchmark.gpucheck [--device cuda] [--tiny] [--data-dir DIR] [--out FILE]

Each step runs the harness's own code on CIFAR-shaped random images (no download) and is
checked:
- training: `Trainer.train_steps` (PGD-AT with the preset's PGD-10) of preact_resnet18 and
  wrn_34_10 in fp32, bf16 autocast, channels_last and torch.compile: images/s, peak memory;
- the trainer against a bare PyTorch loop on the same batches (benchmark.perf.bare_epoch);
- the evaluator (clean, PGD, CW, AutoAttack) with cifar10 quick's and full's settings (full:
  standard AutoAttack) on 10 points per class, attacking a model no perturbation can fool
  (`RobustOracle`): every attack must leave it at 100 % and runs its whole budget on every point,
  so the seconds per point are an upper bound of what a real model costs;
- a run killed after its first epoch and resumed: it finishes with the right epoch count;
- if CIFAR-10 is on disk (`--data-dir`, $FAIRBENCH_DATA or data/), one training epoch on it.
From the measured throughput it projects the wall time of `make bench DATASET=cifar10` (core
methods, one seed) on the quick and full presets, writes the JSON (device, versions, every
number, pass/fail/skip per step), prints a table and exits 1 if any step failed. `--tiny` runs the
same steps at a tiny size (a few images, one attack step, AutoAttack reduced to APGD-CE + APGD-T
with 2 iterations, torch.compile with its eager backend so no kernel compiler is needed): for
CPUs and tests; its projections mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.datasets import DATASETS, TensorLoader, load_splits, to_float
from benchmark.datasets.base import Splits, default_data_dir
from benchmark.errors import UserError
from benchmark.evaluate import ATTACKS, EvalSet, Evaluator
from benchmark.method import load_methods, make_method
from benchmark.models import build_model, resolve_device
from benchmark.perf import bare_epoch, machine, synthetic_splits, train_subset
from benchmark.protocols import Protocol, get_protocol
from benchmark.records import RunPaths
from benchmark.train import Trainer

MODELS = ("preact_resnet18", "wrn_34_10")
VARIANTS = {  # label -> protocol overrides; "channels_last" is the presets' own setting
    "fp32": {"channels_last": False},
    "bf16": {"channels_last": False, "amp": True},
    "channels_last": {"channels_last": True},
    "compile": {"channels_last": True, "compile": True},
}
PROJECTED_FROM = "train preact_resnet18 channels_last"
PRESETS = ("quick", "full")
# Training of the core methods in PGD-AT runs (derivation in benchmark/presets/cifar10.py).
CORE_TRAINING_FACTOR = {"quick": 3.4, "full": 3.25}


@dataclass(frozen=True)
class Size:
    """How much work each step does (full size on a GPU, `--tiny` on a CPU)."""

    batch: int
    train_images: dict[str, int]     # training images per timed epoch, per model
    per_class: int                   # evaluation and validation points per class
    tiny: bool                       # 1 attack step, 2-iteration AutoAttack, eager compile


FULL = Size(batch=128, train_images={"preact_resnet18": 128 * 40, "wrn_34_10": 128 * 6},
            per_class=10, tiny=False)
TINY = Size(batch=4, train_images={"preact_resnet18": 8, "wrn_34_10": 4}, per_class=1,
            tiny=True)


@dataclass
class Check:
    name: str
    status: str = "failed"           # passed | failed | skipped
    seconds: float = 0.0
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str = ""                  # the failure, or why the step was skipped


class Skipped(Exception):
    """A step that cannot run on this machine (e.g. no CIFAR-10 on disk); not a failure."""


class RobustOracle(nn.Module):
    """A real network whose prediction no perturbation within eps can change: its logits are the
    network's (scaled to ~0) plus a margin on the label of the nearest reference image. Attacks
    see the network's true cost and gradients but never succeed, so each runs its whole budget
    on every point: evaluation cost per point as if the model were robust everywhere."""

    def __init__(self, net: nn.Module, images: Tensor, labels: Tensor, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes
        self.register_buffer("images", images.flatten(1))
        self.register_buffer("labels", labels)

    def forward(self, x: Tensor) -> Tensor:
        nearest = torch.cdist(x.flatten(1).float(), self.images).argmin(dim=1)
        margin = nn.functional.one_hot(self.labels[nearest], self.num_classes).to(x.dtype)
        return 1e-3 * self.net(x) + 10.0 * margin


@contextlib.contextmanager
def _eager_compile(enabled: bool) -> Iterator[None]:
    """While `enabled`, torch.compile uses its eager backend: the compile code path without a
    kernel compiler (CPUs, tests)."""
    if not enabled:
        yield
        return
    original = torch.compile
    torch.compile = lambda model, **kw: original(model, backend="eager")  # type: ignore
    try:
        yield
    finally:
        torch.compile = original  # type: ignore


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def protocol_for(preset: str, size: Size, model: str = "preact_resnet18",
                 **changes: Any) -> Protocol:
    """cifar10 `preset`'s protocol at this check's size (tiny: one attack step, 2-iteration
    APGD-CE + APGD-T)."""
    p = replace(get_protocol("cifar10", preset), model=model, batch_size=size.batch,
                val_per_class=size.per_class, test_per_class=size.per_class,
                aa_per_class=size.per_class, eval_batch_size=max(size.batch, 8) * 2)
    if size.tiny:
        p = replace(p, train_steps=1, val_steps=1, eval_pgd_steps=1, eval_cw_steps=1,
                    aa_version="custom", aa_attacks=("apgd-ce", "apgd-t"), aa_iters=2,
                    aa_targets=2)
    return replace(p, **changes)


def _trainer(p: Protocol, splits: Splits, root: Path, device: torch.device) -> Trainer:
    return Trainer(method=make_method("pgd_at", p), protocol=p, splits=splits,
                   paths=RunPaths(root), seed=0, device=device, show_progress=False)


def _random_splits(p: Protocol, n_train: int) -> Splits:
    return train_subset(synthetic_splits("cifar10", replace(p, train_per_class=None)), n_train)


def timed_epoch(trainer: Trainer, epoch: int) -> tuple[float, float, int]:
    """(seconds, peak MiB, updates) of one training epoch of `trainer`."""
    fwd, ctx, counter = trainer.epoch_context()
    try:
        steps = trainer.train_steps(epoch, fwd, ctx, counter)
    finally:
        counter.detach()
    if steps.updates == 0:  # a non-finite loss already raised RunFailed in train_steps
        raise RuntimeError(f"epoch {epoch} made no update")
    return steps.seconds, steps.peak_memory_mb, steps.updates


def train_throughput(model: str, label: str, size: Size, device: torch.device, root: Path
                     ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        p = protocol_for("quick", size, model, **VARIANTS[label])
        splits = _random_splits(p, size.train_images[model])
        trainer = _trainer(p, splits, root / f"{model}-{label}", device)
        t0 = time.perf_counter()
        timed_epoch(trainer, 0)  # warm-up (and compilation)
        check.numbers["warmup_seconds"] = time.perf_counter() - t0
        seconds, peak, updates = timed_epoch(trainer, 1)
        check.numbers.update(images_per_second=len(splits.train_y) / seconds,
                             peak_memory_mb=peak, images=len(splits.train_y), updates=updates)
    return work


def harness_vs_bare(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        p = protocol_for("quick", size, channels_last=False)
        splits = _random_splits(p, size.train_images["preact_resnet18"])
        times: dict[str, float] = {}
        for label in ("harness", "bare", "harness", "bare"):  # the second round counts
            trainer = _trainer(p, splits, root / "ratio", device)
            if label == "harness":
                times[label] = timed_epoch(trainer, 0)[0]
                continue
            loader = TensorLoader(splits.train_x, splits.train_y, p.batch_size, device=device,
                                  shuffle=True, seed=0,
                                  augment_with=(splits.info.crop_padding, splits.info.flip))
            _sync(device)
            t0 = time.perf_counter()
            bare_epoch(trainer.model, trainer.optimizer, loader, p)
            _sync(device)
            times[label] = time.perf_counter() - t0
        check.numbers.update(harness_seconds=times["harness"], bare_seconds=times["bare"],
                             ratio=times["harness"] / times["bare"])
    return work


def evaluate_check(preset: str, size: Size, device: torch.device, root: Path
                   ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        p = protocol_for(preset, size)
        splits = synthetic_splits("cifar10", p)
        net = build_model(p.model, 10, splits.info.shape)
        oracle = RobustOracle(net, to_float(splits.test_x), splits.test_y, 10)
        data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
        result = Evaluator(p, device, show_progress=False).evaluate(
            oracle, data, root / f"eval-{preset}.json")
        fooled = [a for a in ATTACKS if result["attacks"][a]["worst"] < 1.0]
        if fooled:
            raise RuntimeError(f"{', '.join(fooled)} changed predictions of a model no "
                               f"perturbation can fool: the evaluation path is broken")
        n = {a: result["attacks"][a]["n_points"] for a in ATTACKS}
        check.numbers.update(autoattack=p.aa_description(), points=n["clean"],
                             pgd_steps=p.eval_pgd_steps,
                             **{f"{a}_seconds_per_point": result["seconds"][a] / n[a]
                                for a in ATTACKS})
    return work


def resume_check(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        p = protocol_for("quick", size, epochs=2)
        splits = _random_splits(p, size.train_images["preact_resnet18"])
        first = _trainer(replace(p, epochs=1), splits, root / "resume", device).run()
        summary = _trainer(p, splits, root / "resume", device).run()  # from ckpt_last.pt
        if (first.epochs, summary.epochs) != (1, 2):
            raise RuntimeError(f"killed after {first.epochs} epoch(s) and resumed, the run "
                               f"trained {summary.epochs} epochs, not 2")
        check.numbers.update(epochs=summary.epochs)
    return work


def real_data_check(size: Size, device: torch.device, root: Path, data_dir: Path
                    ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        try:
            DATASETS.get("cifar10").check(data_dir)
        except UserError:
            raise Skipped(f"no CIFAR-10 in {data_dir} (optional: pass --data-dir to also "
                          f"train on the real images)") from None
        p = protocol_for("quick", size)
        splits = load_splits("cifar10", seed=0, val_per_class=p.val_per_class,
                             data_dir=data_dir)
        splits = train_subset(splits, size.train_images["preact_resnet18"])
        seconds, peak, updates = timed_epoch(_trainer(p, splits, root / "real", device), 0)
        check.numbers.update(data_dir=str(data_dir), images=len(splits.train_y),
                             images_per_second=len(splits.train_y) / seconds,
                             peak_memory_mb=peak, updates=updates)
    return work


def _run(name: str, checks: list[Check], work: Callable[[Check], None]) -> None:
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


def run_checks(size: Size, device: torch.device, data_dir: Path) -> list[Check]:
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp, _eager_compile(size.tiny):
        root = Path(tmp)
        for model in MODELS:
            for label in VARIANTS:
                _run(f"train {model} {label}", checks,
                     train_throughput(model, label, size, device, root))
        _run("trainer vs bare loop", checks, harness_vs_bare(size, device, root))
        for preset in PRESETS:
            _run(f"evaluate {preset} settings", checks,
                 evaluate_check(preset, size, device, root))
        _run("kill and resume", checks, resume_check(size, device, root))
        _run("real cifar10", checks, real_data_check(size, device, root, data_dir))
    return checks


def projections(checks: list[Check]) -> dict[str, Any]:
    """Hours of `make bench DATASET=cifar10` (core methods, one seed) per preset, from the
    measured training throughput and evaluation seconds per point. Evaluation costs are upper
    bounds (every point robust through every attack)."""
    by_name = {c.name: c for c in checks if c.status == "passed"}
    if PROJECTED_FROM not in by_name:
        return {}
    images_per_second = by_name[PROJECTED_FROM].numbers["images_per_second"]
    registry = load_methods()
    checkpoints = 2 * sum(1 for n in registry.names() if registry.get(n).core)  # best, last
    out: dict[str, Any] = {}
    for preset in PRESETS:
        ev = by_name.get(f"evaluate {preset} settings")
        if ev is None:
            continue
        p = get_protocol("cifar10", preset)
        per_point = ev.numbers
        train_images = 10 * (p.train_per_class or 5000 - p.val_per_class)
        runs = CORE_TRAINING_FACTOR[preset]
        training = train_images * p.epochs * runs / images_per_second
        # validation: PGD-`val_steps` on the validation split after every epoch
        pgd_step = per_point["pgd20_seconds_per_point"] / per_point["pgd_steps"]
        validation = 10 * p.val_per_class * p.epochs * runs * p.val_steps * pgd_step
        test_points = 10 * (p.test_per_class or 1000)
        aa_points = 10 * (p.aa_per_class or p.test_per_class or 1000)
        evaluation = checkpoints * (
            test_points * sum(per_point[f"{a}_seconds_per_point"] for a in ATTACKS
                              if a != "autoattack")
            + aa_points * per_point["autoattack_seconds_per_point"])
        out[preset] = {"training_hours": training / 3600, "validation_hours": validation / 3600,
                       "evaluation_hours_at_most": evaluation / 3600,
                       "total_hours_at_most": (training + validation + evaluation) / 3600,
                       "checkpoints": checkpoints, "autoattack": per_point["autoattack"]}
    return out


def _shown(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in numbers.items() if k != "traceback")


def print_table(report: dict[str, Any]) -> None:
    print(f"{'step':<36} {'status':<8} {'seconds':>8}  numbers")
    for c in report["checks"]:
        print(f"{c['name']:<36} {c['status']:<8} {c['seconds']:8.1f}  "
              f"{c['error'] or _shown(c['numbers'])}")
    caveat = "(--tiny: meaningless) " if report["tiny"] else ""
    for preset, proj in report["projections"].items():
        print(f"{caveat}projected cifar10 {preset} (make bench, core methods, one seed): "
              f"training {proj['training_hours']:.1f} h + validation "
              f"{proj['validation_hours']:.1f} h + evaluation <= "
              f"{proj['evaluation_hours_at_most']:.1f} h")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.gpucheck",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:N, cpu, mps (default: auto)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU, tests)")
    parser.add_argument("--data-dir", default=None,
                        help="where to look for CIFAR-10 (default: $FAIRBENCH_DATA or data/)")
    parser.add_argument("--out", default="results/gpucheck.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        device = resolve_device(args.device)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):
            raise UserError(f"cannot write {out}; pass --out in a writable directory")
    except (UserError, OSError) as err:
        print(f"error: {err}")
        return 2
    if device.type == "cpu" and not args.tiny and args.device is None:
        print('error: no GPU here; the full-size check on a CPU takes hours: add --tiny (make '
              'gpu-check ARGS="--tiny --device cpu"), or --device cpu to insist')
        return 2
    size = TINY if args.tiny else FULL
    t0 = time.perf_counter()
    checks = run_checks(size, device, Path(args.data_dir or default_data_dir()))
    failed = [c.name for c in checks if c.status == "failed"]
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(device), "tiny": args.tiny,
              "seconds": time.perf_counter() - t0, "passed": not failed,
              "checks": [vars(c) for c in checks], "projections": projections(checks)}
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    verdict = "passed" if not failed else f"FAILED ({', '.join(failed)})"
    print(f"gpu-check {verdict} in {report['seconds']:.0f} s on {device}; wrote {out}")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
