"""`make gpu-check`: minutes on one GPU that prove the CIFAR path and measure it.

    python -m benchmark.gpucheck [--device cuda:N] [--tiny] [--data-dir DIR] [--out FILE]

Each step runs the harness's own code on CIFAR-shaped random images (no download) and is
checked (docs/speed.md, "The GPU check"):
- training: `Trainer.train_steps` (PGD-AT with the preset's PGD-10) of preact_resnet18 and
  wrn_34_10 in fp32, bf16 autocast, channels_last and torch.compile: images/s, peak memory;
- one epoch of every core method (and warm-start base) at the preset's settings: images/s;
- the trainer against a bare PyTorch loop on the same batches (interleaved rounds, median);
- the evaluator (clean, PGD, CW, AutoAttack) with cifar10 quick's and full's settings (full:
  standard AutoAttack) on 10 points per class of a `RobustOracle`: every attack must leave it at
  100 %, and runs its whole budget on every point (upper-bound seconds per point);
- a run killed after its first epoch resumes from its checkpoint (the first epoch's log line
  survives; on a CPU the final weights equal an uninterrupted run's);
- if CIFAR-10 is on disk (`--data-dir`, $FAIRBENCH_DATA or data/), one training epoch on it.
From these it projects `make bench DATASET=cifar10` (core methods, one seed) on quick and
full, writes the JSON (device, versions, every number, passed/failed/skipped per step), prints a
table and exits 1 if a step failed. `--tiny` runs the same steps at a tiny size (a few images,
batch 4, 3 training attack steps, 1 evaluation step, AutoAttack reduced to APGD-CE + APGD-T
with 2 iterations, torch.compile with its eager backend, no kernel compiler needed): it proves
the code paths on a CPU; its numbers and projections mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
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

from benchmark.datasets import DATASETS, load_splits, to_float
from benchmark.datasets.base import Splits, default_data_dir
from benchmark.errors import RunFailed, UserError
from benchmark.evaluate import ATTACKS, EvalSet, Evaluator
from benchmark.method import load_methods, make_method
from benchmark.models import build_model, resolve_device
from benchmark.oracle import RobustOracle
from benchmark.perf import (
    GOALS,
    Timer,
    bare_epoch,
    bare_setup,
    machine,
    synthetic_splits,
    timing_trainer,
    train_subset,
)
from benchmark.protocols import Protocol, get_protocol
from benchmark.records import read_jsonl
from benchmark.schema import EpochLog
from benchmark.train import EpochSteps, Trainer

CHECKED_MODELS = ("preact_resnet18", "wrn_34_10")
VARIANTS = {  # label -> the three speed flags (the presets use "channels_last")
    "fp32": {"channels_last": False, "amp": False, "compile": False},
    "bf16": {"channels_last": False, "amp": True, "compile": False},
    "channels_last": {"channels_last": True, "amp": False, "compile": False},
    "compile": {"channels_last": True, "amp": False, "compile": True},
}
PRESETS = ("quick", "full")
CIFAR10_IMAGES = {"train": 50_000, "test": 10_000}   # the dataset's own split sizes
CLASSES = DATASETS.get("cifar10").num_classes
BARE_ROUNDS = 3                                      # timed rounds of trainer vs bare loop


def variant_check_name(model: str, variant: str) -> str:
    return f"train {model} {variant}"


def method_check_name(method: str) -> str:
    return f"train method {method}"


def eval_check_name(preset: str) -> str:
    return f"evaluate {preset} settings"


@dataclass(frozen=True)
class Size:
    """How much work each step does (full size on a GPU, `--tiny` on a CPU)."""

    train_images: dict[str, int]     # training images per timed epoch, per model
    per_class: int                   # evaluation and validation points per class
    tiny: bool                       # tiny settings (protocol_for), eager torch.compile


FULL = Size(train_images={"preact_resnet18": 128 * 20, "wrn_34_10": 128 * 4}, per_class=10,
            tiny=False)
TINY = Size(train_images={"preact_resnet18": 8, "wrn_34_10": 4}, per_class=1, tiny=True)


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


def protocol_for(preset: str, size: Size, model: str = "preact_resnet18",
                 **changes: Any) -> Protocol:
    """cifar10 `preset`'s protocol with this check's points per class; tiny: batch 4, 3 training
    attack steps (HAM's early check needs them), 1 validation/evaluation step, 2-iteration
    APGD-CE + APGD-T."""
    p = replace(get_protocol("cifar10", preset), model=model, val_per_class=size.per_class,
                test_per_class=size.per_class, aa_per_class=size.per_class)
    if size.tiny:
        p = replace(p, batch_size=4, eval_batch_size=16, train_steps=3, val_steps=1,
                    eval_pgd_steps=1, eval_cw_steps=1, aa_version="custom",
                    aa_attacks=("apgd-ce", "apgd-t"), aa_iters=2, aa_targets=2)
    return replace(p, **changes)


def random_splits(p: Protocol, n_train: int) -> Splits:
    """Random CIFAR-shaped images: `n_train` shuffled training images, the protocol's others."""
    per_class = math.ceil(n_train / CLASSES)
    return train_subset(synthetic_splits("cifar10", replace(p, train_per_class=per_class)),
                        n_train)


def timed_epoch(trainer: Trainer, epoch: int) -> EpochSteps:
    """Training epoch `epoch` of `trainer` (its seconds, peak memory, updates, method log)."""
    fwd, ctx, counter = trainer.epoch_context()
    try:
        steps = trainer.train_steps(epoch, fwd, ctx, counter)
    finally:
        counter.detach()
    if steps.updates == 0:  # a non-finite loss already raised RunFailed in train_steps
        raise RuntimeError(f"epoch {epoch} made no update")
    return steps


def _throughput(check: Check, trainer: Trainer, first_epoch: int) -> None:
    """A warm-up epoch (compilation happens there), then a timed one; the timed epoch's
    numeric method log too (e.g. the fraction HAM dropped, which sets its cost)."""
    t0 = time.perf_counter()
    timed_epoch(trainer, first_epoch)
    check.numbers["warmup_seconds"] = time.perf_counter() - t0
    steps = timed_epoch(trainer, first_epoch + 1)
    n = len(trainer.splits.train_y)
    check.numbers.update(images_per_second=n / steps.seconds,
                         peak_memory_mb=steps.peak_memory_mb, images=n, updates=steps.updates,
                         **{k: v for k, v in steps.method_log.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)})


def variant_throughput(model: str, variant: str, size: Size, device: torch.device, root: Path
                       ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """PGD-AT of `model` with the variant's speed flags."""
        p = protocol_for("quick", size, model, **VARIANTS[variant])
        splits = random_splits(p, size.train_images[model])
        _throughput(check, timing_trainer("pgd_at", p, splits, device, root / variant), 0)
    return work


def method_throughput(method: str, size: Size, device: torch.device, root: Path
                      ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """`method` on preact_resnet18 at the preset's settings, at its own first epochs, from
        random weights on random labels. A method's own guard that stops it there (e.g. DAFA's
        class weight <= 0 after a collapsed warm-up) skips the step: random images say nothing
        about the method."""
        p = protocol_for("quick", size)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        trainer = timing_trainer(method, p, splits, device, root)
        try:
            _throughput(check, trainer, trainer.method.begin(p))
        except RunFailed as err:
            if "non-finite" in str(err):
                raise  # the harness's own check: a real failure
            raise Skipped(f"{method}'s own check stopped it on random images: {err}") from err
    return work


def harness_vs_bare(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """Interleaved rounds of a PGD-AT epoch through `Trainer` and through a bare loop on the
        same batches; the median per-round ratio (round 0 warms up and is dropped)."""
        p = protocol_for("quick", size)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        timer = Timer(device)
        for r in range(BARE_ROUNDS + 1):
            if r == 1:
                timer.clear()
            trainer = timing_trainer("pgd_at", p, splits, device, root)
            fwd, ctx, counter = trainer.epoch_context()
            timer.time("harness", lambda t=trainer, f=fwd, c=ctx, k=counter:
                       t.train_steps(0, f, c, k))
            counter.detach()
            model, opt, loader = bare_setup(p, splits, device, trainer.model.state_dict(),
                                            p.channels_last)
            timer.time("bare", lambda m=model, o=opt, ld=loader:
                       bare_epoch(m, o, ld, p, channels_last=p.channels_last))
        check.numbers.update(ratio=timer.ratio("harness", "bare"),
                             goal=GOALS["harness_vs_bare"], rounds=BARE_ROUNDS,
                             harness_seconds=timer.median("harness"),
                             bare_seconds=timer.median("bare"))
    return work


def evaluate_check(preset: str, size: Size, device: torch.device, root: Path
                   ) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """The evaluator with `preset`'s attacks on a model no perturbation can fool."""
        p = protocol_for(preset, size)
        splits = synthetic_splits("cifar10", p)
        net = build_model(p.model, CLASSES, splits.info.shape)
        oracle = RobustOracle(net, to_float(splits.test_x), splits.test_y, CLASSES)
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


class _Killed(Exception):
    """Raised from `after_epoch` to stop a run as a kill would (checkpoint written)."""


def resume_check(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """A 2-epoch run killed after epoch 1 resumes: its weights and optimizer state come back
        bit for bit, epoch 1's log line (with its timing) survives, one more epoch is trained;
        on a CPU the final weights equal a run never killed."""
        p = protocol_for("quick", size, epochs=2)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        logged: list[str] = []

        def kill(line: EpochLog) -> None:
            logged.append(json.dumps(line.as_dict()))
            raise _Killed

        killed = timing_trainer("pgd_at", p, splits, device, root / "killed", after_epoch=kill)
        with contextlib.suppress(_Killed):
            killed.run()
        if len(logged) != 1:
            raise RuntimeError("the run was not killed after its first epoch")
        resumed = timing_trainer("pgd_at", p, splits, device, root / "killed")
        resumed._resume_or_start()  # what run() does first: exact on any device
        lost = _differences(killed, resumed)
        if lost:
            raise RuntimeError(f"resuming did not restore {', '.join(lost)}")
        summary = resumed.run()
        lines = [json.dumps(r) for r in read_jsonl(resumed.paths.log)]
        if summary.epochs != 2 or len(lines) != 2 or lines[0] != logged[0]:
            raise RuntimeError(f"the resumed run trained {summary.epochs} epochs with "
                               f"{len(lines)} log lines; its first line "
                               f"{'survived' if lines[:1] == logged else 'was redone'}")
        straight = timing_trainer("pgd_at", p, splits, device, root / "straight")
        straight.run()
        diff = max(float((a - b).abs().max()) for a, b in zip(
            resumed.model.state_dict().values(), straight.model.state_dict().values(),
            strict=True) if a.is_floating_point())
        if device.type == "cpu" and diff != 0:
            raise RuntimeError(f"resumed weights differ from an uninterrupted run by {diff:g}")
        check.numbers.update(epochs=summary.epochs, max_weight_difference=diff)
    return work


def _differences(a: Trainer, b: Trainer) -> list[str]:
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


def real_data_check(size: Size, device: torch.device, root: Path, data_dir: Path,
                    required: bool) -> Callable[[Check], None]:
    def work(check: Check) -> None:
        """One PGD-AT epoch on real CIFAR-10 images from disk (skipped when absent, unless the
        user pointed --data-dir at it)."""
        try:
            DATASETS.get("cifar10").check(data_dir)
        except UserError as err:
            if required:
                raise
            raise Skipped(f"no CIFAR-10 in {data_dir} (optional: pass --data-dir to also "
                          f"train on the real images)") from err
        p = protocol_for("quick", size)
        splits = load_splits("cifar10", seed=0, val_per_class=p.val_per_class,
                             data_dir=data_dir)
        splits = train_subset(splits, size.train_images["preact_resnet18"])
        check.numbers["data_dir"] = str(data_dir)
        _throughput(check, timing_trainer("pgd_at", p, splits, device, root), 0)
    return work


def bench_runs(p: Protocol) -> list[str]:
    """The runs of `make bench`: the core methods and, transitively, their warm-start bases."""
    registry = load_methods()
    runs = [n for n in registry.names() if registry.get(n).core]
    for name in runs:  # grows while it is read: bases of bases
        warm = make_method(name, p).warm_start(p)
        if warm is not None and warm[0] not in runs:
            runs.append(warm[0])
    return runs


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


def run_checks(size: Size, device: torch.device, data_dir: Path, data_required: bool
               ) -> list[Check]:
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp, _eager_compile(size.tiny):
        root = Path(tmp)
        for model in CHECKED_MODELS:
            for variant in VARIANTS:
                _run(variant_check_name(model, variant), checks,
                     variant_throughput(model, variant, size, device, root / model))
        runs: list[str] = []
        _run("plan make bench", checks, lambda c: runs.extend(bench_runs(
            get_protocol("cifar10", "quick"))))
        for method in runs:
            _run(method_check_name(method), checks,
                 method_throughput(method, size, device, root / "methods"))
        _run("trainer vs bare loop", checks, harness_vs_bare(size, device, root / "ratio"))
        for preset in PRESETS:
            _run(eval_check_name(preset), checks, evaluate_check(preset, size, device, root))
        _run("kill and resume", checks, resume_check(size, device, root))
        _run("real cifar10", checks, real_data_check(size, device, root / "real", data_dir,
                                                     data_required))
    return checks


def projections(checks: list[Check]) -> dict[str, Any]:
    """Hours of `make bench DATASET=cifar10` (core methods, one seed) per preset: training
    from each run's measured images/s x its epochs; validation (PGD-`val_steps` after every
    epoch) and evaluation (best and last checkpoint of every run) from the measured seconds per
    point, which are upper bounds (every point robust through every attack)."""
    passed = {c.name: c.numbers for c in checks if c.status == "passed"}
    out: dict[str, Any] = {}
    for preset in PRESETS:
        p = get_protocol("cifar10", preset)
        try:
            runs = bench_runs(p)
        except UserError:
            continue  # reported by the "plan make bench" step
        ev = passed.get(eval_check_name(preset))
        if ev is None or any(method_check_name(m) not in passed for m in runs):
            continue  # a step it needs failed: no projection rather than a wrong one
        train_images = p.train_per_class * CLASSES if p.train_per_class else \
            CIFAR10_IMAGES["train"] - CLASSES * p.val_per_class
        methods = {m: make_method(m, p) for m in runs}
        epochs = {m: method.end_epoch(p) - method.begin(p) for m, method in methods.items()}
        training = sum(epochs[m] * train_images
                       / passed[method_check_name(m)]["images_per_second"] for m in runs)
        pgd_step = ev["pgd20_seconds_per_point"] / ev["pgd_steps"]
        validation = sum(epochs.values()) * CLASSES * p.val_per_class * p.val_steps * pgd_step
        test_points = CLASSES * p.test_per_class if p.test_per_class else CIFAR10_IMAGES["test"]
        aa_points = CLASSES * p.aa_per_class if p.aa_per_class else test_points
        per_checkpoint = (test_points * sum(ev[f"{a}_seconds_per_point"] for a in ATTACKS
                                            if a != "autoattack")
                          + aa_points * ev["autoattack_seconds_per_point"])
        evaluation = 2 * len(runs) * per_checkpoint
        out[preset] = {"runs": runs, "epochs": epochs, "training_hours": training / 3600,
                       "validation_hours_at_most": validation / 3600,
                       "evaluation_hours_at_most": evaluation / 3600,
                       "total_hours_at_most": (training + validation + evaluation) / 3600,
                       "autoattack": ev["autoattack"]}
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
              f"training {proj['training_hours']:.1f} h + validation <= "
              f"{proj['validation_hours_at_most']:.1f} h + evaluation <= "
              f"{proj['evaluation_hours_at_most']:.1f} h")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.gpucheck",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:N, cpu, mps (default: auto)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU, tests)")
    parser.add_argument("--data-dir", default=None,
                        help="where CIFAR-10 is (default: $FAIRBENCH_DATA or data/, optional)")
    parser.add_argument("--out", default=None, help="default: results/gpucheck.json "
                        "(--tiny: results/gpucheck-tiny.json)")
    args = parser.parse_args(argv)
    out = Path(args.out or f"results/gpucheck{'-tiny' if args.tiny else ''}.json")
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
    t0 = time.perf_counter()
    checks = run_checks(TINY if args.tiny else FULL, device,
                        Path(args.data_dir or default_data_dir()), args.data_dir is not None)
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
