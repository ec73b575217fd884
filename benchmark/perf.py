"""`make perf`: the harness's own training epoch and evaluator, timed against bare PyTorch.

    python -m benchmark.perf [--dataset fmnist --preset quick] [--device cuda] [--rounds 5]

Times the code the benchmark runs, never a copy: `Trainer.train_steps` (one epoch of the real
method, loader, augmentation, pass counting and checks) against a minimal PyTorch PGD-AT loop
written here for the same work (same batches, same optimizer), and against the fastest bare loop
found for this hardware; `validate` and the checkpoint writes of `Trainer`; `Evaluator` per
attack; the harness's per-class AutoAttack against one plain pyautoattack run on the same points.
Variants run interleaved over `--rounds` rounds from the same start weights, so background load
hits them alike; every ratio is a median of per-round ratios measured in this one run. With
`--device cuda` (or `--synthetic`) the data are random images of CIFAR shape for the CIFAR-10
preset's model, so a GPU machine measures without any download. Writes results/perf.json.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.datasets import DATASETS, TensorLoader, load_splits
from benchmark.datasets.base import Splits, first_per_class, to_float
from benchmark.errors import UserError
from benchmark.evaluate import EvalSet, Evaluator, autoattack_labels, load_state, make_autoattack
from benchmark.memory import peak_mb, reset_peak
from benchmark.method import make_method
from benchmark.models import build_model, in_memory_format, resolve_device
from benchmark.protocols import Protocol, get_protocol
from benchmark.records import RunPaths
from benchmark.train import Trainer, validate

GOALS = {"harness_vs_bare": 1.02, "harness_vs_fastest_bare": 1.05,
         "autoattack_vs_plain": 1.02}


# --- the work being timed ------------------------------------------------------------------
def bare_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: TensorLoader,
               protocol: Protocol, *, channels_last: bool = False,
               freeze_in_attack: bool = False) -> None:
    """A minimal PyTorch PGD-AT epoch: the same batches, attack and update as the harness's
    `pgd_at`, without the harness (no method object, counter, checks or logging)."""
    eps, alpha, steps = protocol.eps, protocol.alpha, protocol.train_steps
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model.eval()
        if freeze_in_attack:
            for p in params:
                p.requires_grad_(False)
        x_adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps),
                              x + eps).clamp(0, 1)
        if freeze_in_attack:
            for p in params:
                p.requires_grad_(True)
        model.train()
        loss = F.cross_entropy(model(x_adv.detach()), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def synthetic_splits(dataset: str, protocol: Protocol, seed: int = 0) -> Splits:
    """Random uint8 images of the dataset's shape and balanced labels, sized like the preset
    (no download): for timing only."""
    info = DATASETS.get(dataset)
    gen = torch.Generator().manual_seed(seed)
    c = info.num_classes

    def make(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(c).repeat_interleave(per_class)
        return torch.randint(0, 256, (len(y), *info.shape), dtype=torch.uint8, generator=gen), y

    train_x, train_y = make(protocol.train_per_class or 500)
    val_x, val_y = make(protocol.val_per_class)
    test_x, test_y = make(protocol.test_per_class or 100)
    return Splits(info, train_x, train_y, val_x, val_y, test_x, test_y)


def train_subset(splits: Splits, n: int, seed: int = 0) -> Splits:
    """The first `n` training images (a shuffled, class-mixed subset): one timed epoch."""
    order = torch.randperm(len(splits.train_y), generator=torch.Generator().manual_seed(seed))
    keep = order[:n]
    return replace(splits, train_x=splits.train_x[keep], train_y=splits.train_y[keep])


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU runs asynchronously): timing needs it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Interleaved rounds: every variant once per round; medians of per-round ratios."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = {}
        self.peak: dict[str, float] = {}

    def time(self, label: str, work: Callable[[], Any]) -> Any:
        sync(self.device)
        reset_peak(self.device)
        t0 = time.perf_counter()
        out = work()
        sync(self.device)
        self.seconds.setdefault(label, []).append(time.perf_counter() - t0)
        self.peak[label] = max(self.peak.get(label, 0.0), peak_mb(self.device))
        return out

    def clear(self) -> None:
        self.seconds.clear()
        self.peak.clear()

    def median(self, label: str) -> float:
        return statistics.median(self.seconds[label])

    def ratio(self, label: str, ref: str) -> float:
        return statistics.median(a / b for a, b in zip(self.seconds[label], self.seconds[ref],
                                                        strict=True))


# --- the measurements ----------------------------------------------------------------------
TRAIN_VARIANTS: dict[str, dict[str, Any]] = {  # label -> (method, protocol overrides)
    "harness": {"method": "pgd_at"},                 # the preset as it is (channels_last on)
    "harness+contiguous": {"method": "pgd_at", "overrides": {"channels_last": False}},
    "harness+bf16": {"method": "pgd_at", "overrides": {"amp": True}},
    "ham": {"method": "ham"},
}
BARE_VARIANTS: dict[str, dict[str, bool]] = {
    "bare": {},
    "bare+channels_last": {"channels_last": True},
    "bare+channels_last+frozen": {"channels_last": True, "freeze_in_attack": True},
    "bare+frozen": {"freeze_in_attack": True},
}


def timing_trainer(method: str, protocol: Protocol, splits: Splits, device: torch.device,
                   root: Path, start: dict[str, torch.Tensor] | None = None,
                   **options: Any) -> Trainer:
    """A quiet Trainer of `method` in `root/<method>` (seed 0), from `start` weights if given;
    `options` go to Trainer (e.g. after_epoch)."""
    trainer = Trainer(method=make_method(method, protocol), protocol=protocol, splits=splits,
                      paths=RunPaths(root / method), seed=0, device=device,
                      show_progress=False, **options)
    if start is not None:
        trainer.model.load_state_dict(start)
    return trainer


def bare_setup(protocol: Protocol, splits: Splits, device: torch.device,
               start: dict[str, torch.Tensor] | None, channels_last: bool
               ) -> tuple[nn.Module, torch.optim.Optimizer, TensorLoader]:
    """The bare loop's model (from `start` if given), SGD optimizer and training loader: the
    protocol's settings and the harness's batches, nothing else."""
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    loader = TensorLoader(splits.train_x, splits.train_y, protocol.batch_size, device=device,
                          shuffle=True, seed=0,
                          augment_with=(splits.info.crop_padding, splits.info.flip))
    return model, opt, loader


def measure_training(protocol: Protocol, splits: Splits, device: torch.device,
                     start: dict[str, torch.Tensor], rounds: int, root: Path
                     ) -> tuple[Timer, dict[str, Any]]:
    timer = Timer(device)
    passes: dict[str, float] = {}
    loader_for_data = TensorLoader(splits.train_x, splits.train_y, protocol.batch_size,
                                   device=device, shuffle=True, seed=0,
                                   augment_with=(splits.info.crop_padding, splits.info.flip))
    for r in range(rounds + 1):  # round 0 warms up (first calls, allocator) and is dropped
        if r == 1:
            timer.clear()
        for label, spec in TRAIN_VARIANTS.items():
            p = replace(protocol, **spec.get("overrides", {}))
            trainer = timing_trainer(spec["method"], p, splits, device, root, start)
            model, ctx, counter = trainer.epoch_context()
            steps = timer.time(label, lambda t=trainer, m=model, c=ctx, k=counter, e=r:
                               t.train_steps(e, m, c, k))
            counter.detach()
            passes[label] = (steps.forward + steps.backward) / len(splits.train_y)
            if label == "harness":
                trainer.state.epoch = 1
                timer.time("validation", lambda t=trainer: validate(
                    t.model, t.splits, t.protocol, t.device))
                timer.time("checkpoint", trainer.save_checkpoints)
            del trainer, model, ctx, counter  # no variant's memory lives on into the next
            gc.collect()
        for label, flags in BARE_VARIANTS.items():
            torch.manual_seed(r)
            model, opt, loader = bare_setup(protocol, splits, device, start,
                                            flags.get("channels_last", False))
            timer.time(label, lambda m=model, o=opt, ld=loader, f=flags:
                       bare_epoch(m, o, ld, protocol, **f))
            del model, opt, loader
            gc.collect()
        timer.time("data", lambda: [None for _ in loader_for_data])
    return timer, {"passes_per_example": passes}


def accuracy_of_speed_paths(protocol: Protocol, splits: Splits, device: torch.device,
                            start: dict[str, torch.Tensor], epochs: int, root: Path
                            ) -> dict[str, dict[str, float]]:
    """Validation accuracy after `epochs` full PGD-AT epochs from the same start weights, with
    the preset's settings and each speed path switched: what the speed costs in accuracy."""
    out = {}
    for label in ("harness", "harness+contiguous", "harness+bf16"):
        p = replace(protocol, **TRAIN_VARIANTS[label].get("overrides", {}))
        trainer = timing_trainer("pgd_at", p, splits, device, root / label, start)
        model, ctx, counter = trainer.epoch_context()
        for epoch in range(epochs):
            trainer.train_steps(epoch, model, ctx, counter)
        counter.detach()
        val = validate(trainer.model, splits, p, device)
        out[label] = {"clean_avg": val["clean_avg"], "robust_avg": val["robust_avg"],
                      "robust_worst": val["robust_worst"]}
    return out


def measure_evaluation(protocol: Protocol, splits: Splits, device: torch.device,
                       start: dict[str, torch.Tensor], rounds: int, per_class: int, root: Path
                       ) -> tuple[Timer, dict[str, Any]]:
    def fresh() -> nn.Module:
        model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
        model.load_state_dict(start)
        return model.to(device).eval()

    model, plain = fresh(), fresh()  # the evaluator converts its model (channels_last)
    keep = first_per_class(splits.test_y, per_class, splits.info.num_classes)
    data = EvalSet(splits.test_x[keep], splits.test_y[keep], splits.info.classes)
    p = replace(protocol, aa_per_class=per_class)
    result = Evaluator(p, device, show_progress=False).evaluate(model, data, root / "eval.json")
    timer = Timer(device)
    x, y = to_float(data.x).to(device), data.y.to(device)
    harness = in_memory_format(model, p.channels_last)  # what Evaluator hands AutoAttack
    for r in range(rounds + 1):  # round 0 warms up and is dropped
        if r == 1:
            timer.clear()
        timer.time("autoattack_harness", lambda: autoattack_labels(harness, data.x, data.y, p,
                                                                   device))
        timer.time("autoattack_plain", lambda: make_autoattack(plain, p, device)
                   .run_standard_evaluation(x, y, batch_size=128))
    total = sum(result["seconds"].values())
    return timer, {"points": len(data.y), "attack_seconds": result["seconds"],
                   "attack_share": {k: v / total for k, v in result["seconds"].items()}}


def start_weights(protocol: Protocol, splits: Splits, device: torch.device, init: Path | None,
                  warmup_epochs: int, root: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Weights every variant starts from: a checkpoint, else a short PGD-AT warm-up on the
    timed subset (so HAM has easy examples to drop)."""
    if init is not None:
        return load_state(init)["model"], str(init)
    trainer = timing_trainer("pgd_at", protocol, splits, device, root,
                             build_model(protocol.model, splits.info.num_classes,
                                         splits.info.shape).state_dict())
    model, ctx, counter = trainer.epoch_context()
    for epoch in range(warmup_epochs):
        trainer.train_steps(epoch, model, ctx, counter)
    counter.detach()
    state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    return state, f"{warmup_epochs} PGD-AT epochs on the timed subset"


def _rss_now() -> float:
    """Current resident set size in MiB (the process baseline the CPU peaks include)."""
    reset_peak(torch.device("cpu"))
    return peak_mb(torch.device("cpu"))


def machine(device: torch.device) -> dict[str, Any]:
    import os

    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cuda": torch.version.cuda if device.type == "cuda" else None,
            # pre-Ampere GPUs emulate bf16: its timings are then not native bf16's
            "bf16_native": torch.cuda.get_device_capability(device) >= (8, 0)
            if device.type == "cuda" else None}


def workload(args: argparse.Namespace, device: torch.device) -> tuple[str, str, bool]:
    """(dataset, preset, synthetic): on a GPU, or with --synthetic, FMNIST is replaced by
    CIFAR-10 (same preset name) on random images of CIFAR shape."""
    synthetic = args.synthetic or (device.type == "cuda" and args.dataset == "fmnist")
    dataset = "cifar10" if synthetic and args.dataset == "fmnist" else args.dataset
    return dataset, args.preset, synthetic


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    dataset, preset, synthetic = workload(args, device)
    protocol = get_protocol(dataset, preset)
    if synthetic:
        splits = synthetic_splits(dataset, protocol)
    else:
        splits = load_splits(dataset, seed=0, val_per_class=protocol.val_per_class,
                             train_per_class=protocol.train_per_class,
                             test_per_class=protocol.test_per_class)
    baseline_mb = peak_mb(device) if device.type == "cuda" else _rss_now()
    n_train = args.batches * protocol.batch_size
    subset = train_subset(splits, n_train)
    full_batches = -(-len(splits.train_y) // protocol.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        start, start_desc = start_weights(protocol, subset, device, args.init,
                                          args.warmup_epochs, root)
        train, train_extra = measure_training(protocol, subset, device, start, args.rounds,
                                              root)
        evaluation, eval_extra = measure_evaluation(protocol, splits, device, start,
                                                    args.rounds, args.eval_per_class, root)
        acc = accuracy_of_speed_paths(protocol, splits, device, start, args.accuracy_epochs,
                                      root) if args.accuracy_epochs else {}
    timed_batches = -(-len(subset.train_y) // protocol.batch_size)
    epoch_full = train.median("harness") * full_batches / timed_batches
    fastest = min(BARE_VARIANTS, key=train.median)
    same = "bare+channels_last" if protocol.channels_last else "bare"
    ratios = {
        "harness_vs_bare": train.ratio("harness", same),
        "bare_same_format": same,
        "harness_vs_fastest_bare": train.ratio("harness", fastest),
        "fastest_bare": fastest,
        "harness_contiguous_vs_harness": train.ratio("harness+contiguous", "harness"),
        "harness_bf16_vs_harness": train.ratio("harness+bf16", "harness"),
        "ham_vs_pgd_at_time": train.ratio("ham", "harness"),
        "ham_vs_pgd_at_passes": (train_extra["passes_per_example"]["ham"]
                                 / train_extra["passes_per_example"]["harness"]),
        "data_share_of_epoch": train.ratio("data", "harness"),
        "validation_share_of_full_epoch": train.median("validation") / (
            train.median("validation") + train.median("checkpoint") + epoch_full),
        "checkpoint_share_of_full_epoch": train.median("checkpoint") / (
            train.median("validation") + train.median("checkpoint") + epoch_full),
        "autoattack_vs_plain": evaluation.ratio("autoattack_harness", "autoattack_plain"),
    }
    accuracy_diff = {label: {k: acc[label][k] - acc["harness"][k] for k in acc["harness"]}
                     for label in acc if label != "harness"}
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device), "dataset": dataset, "preset": preset,
        "data": "synthetic (random images of the dataset's shape)" if synthetic else "real",
        "model": protocol.model, "batch_size": protocol.batch_size,
        "timed_epoch_batches": timed_batches, "full_epoch_batches": full_batches,
        "rounds": args.rounds, "start_weights": start_desc, "goals": GOALS, "ratios": ratios,
        "median_seconds": {k: train.median(k) for k in train.seconds}
        | {k: evaluation.median(k) for k in evaluation.seconds},
        "peak_memory_mb": train.peak | evaluation.peak,
        "baseline_memory_mb": baseline_mb,
        "accuracy_epochs": args.accuracy_epochs, "accuracy": acc,
        "accuracy_difference_vs_default": accuracy_diff,
        "evaluation": eval_extra, **train_extra,
    }


def print_report(report: dict[str, Any]) -> None:
    r, goals = report["ratios"], report["goals"]
    m = report["machine"]
    print(f"make perf, {report['date']}: {report['dataset']}/{report['preset']} "
          f"({report['data']} data), model {report['model']}, batch {report['batch_size']}, "
          f"{report['timed_epoch_batches']}-batch epochs, {report['rounds']} interleaved rounds, "
          f"on {m['gpu'] or m['device']} ({m['threads']} threads), start: "
          f"{report['start_weights']}")
    print("| measurement | ratio | goal |\n|---|---:|---:|")
    rows = [(f"harness epoch / bare PyTorch loop ({r['bare_same_format']})", "harness_vs_bare"),
            (f"harness epoch / fastest bare loop ({r['fastest_bare']})",
             "harness_vs_fastest_bare"),
            ("per-class AutoAttack / plain pyautoattack, same points", "autoattack_vs_plain"),
            ("harness with contiguous (NCHW) tensors / harness (channels_last)",
             "harness_contiguous_vs_harness"),
            ("harness + bf16 autocast / harness", "harness_bf16_vs_harness"),
            ("HAM / PGD-AT time", "ham_vs_pgd_at_time"),
            ("HAM / PGD-AT passes", "ham_vs_pgd_at_passes"),
            ("data pipeline share of an epoch", "data_share_of_epoch"),
            ("validation share of a full epoch", "validation_share_of_full_epoch"),
            ("checkpoint share of a full epoch", "checkpoint_share_of_full_epoch")]
    for title, key in rows:
        goal = f"<= {goals[key]:.2f}" if key in goals else ""
        print(f"| {title} | {r[key]:.3f} | {goal} |")
    shares = report["evaluation"]["attack_share"]
    print("evaluation share per attack (" + str(report["evaluation"]["points"]) + " points): "
          + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    if report["accuracy"]:
        print(f"validation accuracy after {report['accuracy_epochs']} full PGD-AT epochs from "
              f"the same start, difference to the preset's default (points): "
              + "; ".join(f"{k}: clean {v['clean_avg'] * 100:+.1f}, robust avg "
                          f"{v['robust_avg'] * 100:+.1f}, robust worst "
                          f"{v['robust_worst'] * 100:+.1f}"
                          for k, v in report["accuracy_difference_vs_default"].items()))
    kind = "max allocated" if report["machine"]["gpu"] else "peak RSS of the process"
    print(f"peak memory, {kind} (MiB; before the measurements: "
          f"{report['baseline_memory_mb']:.0f}): "
          + ", ".join(f"{k} {v:.0f}" for k, v in report["peak_memory_mb"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fmnist")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random images of CIFAR-10 shape and the cifar10 quick preset "
                             "(default on a GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8, help="batches per timed epoch")
    parser.add_argument("--eval-per-class", type=int, default=5,
                        help="test points per class for the evaluation timings")
    parser.add_argument("--warmup-epochs", type=int, default=6)
    parser.add_argument("--accuracy-epochs", type=int, default=2,
                        help="full PGD-AT epochs per speed path for the accuracy comparison "
                             "(0: skip)")
    parser.add_argument("--init", type=Path,
                        help="start weights (a model_*.pt); default: results/<dataset>/"
                             "<preset>/pgd_at/seed0/model_last.pt if present, else a warm-up")
    parser.add_argument("--out", type=Path, default=Path("results/perf.json"))
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1 or args.batches < 1 or args.eval_per_class < 1 \
                or args.accuracy_epochs < 0:
            raise UserError("--rounds, --batches and --eval-per-class must be >= 1, "
                            "--accuracy-epochs >= 0")
        dataset, preset, synthetic = workload(args, resolve_device(args.device))
        if args.init is None and not synthetic:
            guess = Path(f"results/{dataset}/{preset}/pgd_at/seed0/model_last.pt")
            args.init = guess if guess.exists() else None
        elif args.init is not None and not args.init.is_file():
            raise UserError(f"--init {args.init} not found")
        report = measure(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    except UserError as err:
        print(f"error: {err}")
        return 2
    print_report(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
