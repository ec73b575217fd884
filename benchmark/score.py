"""`fairbench eval`: per-class scoring of any checkpoint or RobustBench model.

    fairbench eval --checkpoint PATH --model NAME --dataset D [--preset P]
    fairbench eval --robustbench MODEL_NAME --dataset cifar10 --threat-model Linf

The model is evaluated exactly as `fairbench run` evaluates its own checkpoints: the preset's
test set (its `test_per_class`), clean / PGD-20 / CW / AutoAttack per class, through
`benchmark.evaluate.Evaluator`. Results land in `results/<dataset>/<preset>/<label>/seed0/`
(spec.json, env.json, eval/best-<key>.json, record.json) with the record schema of `run_job`, so
reports and `fairbench status` pick them up. The label is `ckpt-<file stem>` or `rb-<name>`
(`--label` to choose; no colon, which is not portable in directory names). A single checkpoint
has no best/last distinction: `eval.best` and `eval.last` both hold its numbers (one eval file),
so tables of either checkpoint list it; training cost fields are None and `history` is empty.

Checkpoints are read with `torch.load(weights_only=True)` only: a raw state dict, or a dict
holding one under "model" (the harness's own files) or "state_dict". Anything else, a pickle
that would run code, or weights that do not fit the model is a one-line error.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from benchmark.errors import UserError

CHECKPOINTS = ("best", "last")
RB_DATASETS = ("cifar10", "cifar100")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="a state dict saved with torch.save")
    parser.add_argument("--robustbench", metavar="MODEL_NAME", help="a RobustBench zoo model")
    parser.add_argument("--threat-model", default="Linf")
    parser.add_argument("--model", help="architecture of --checkpoint (see `fairbench list "
                                        "models`; default: the preset's model)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--results", default="results")
    parser.add_argument("--data-dir")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--device")
    parser.add_argument("--label", help="method name in records and tables (default: "
                                        "ckpt-<file stem> or rb-<model name>)")
    parser.add_argument("--model-dir", default="models",
                        help="where RobustBench keeps zoo weights (default ./models)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# --- loading ---------------------------------------------------------------------------------
def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict in `path`, read without unpickling code; one-line UserError otherwise."""
    from benchmark.evaluate import load_state

    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        obj = load_state(path)
    except Exception as err:  # noqa: BLE001 - unsafe or unreadable files: one line, no details
        raise UserError(f"refused to load {path}: not a plain tensor checkpoint (torch.load with "
                        f"weights_only=True failed: {type(err).__name__}); save the model's "
                        f"state_dict() with torch.save") from None
    return state_dict_of(obj, path)


def state_dict_of(obj: Any, path: Path) -> dict[str, Tensor]:
    """Accept a raw state dict or {"model" | "state_dict": state dict}; strip a DataParallel
    `module.` prefix."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not (isinstance(obj, Mapping) and obj
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())):
        raise UserError(f"{path} holds no state dict (a mapping of parameter names to tensors, "
                        f"raw or under 'model'); got {type(obj).__name__}")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def fit(model: nn.Module, state: Mapping[str, Tensor], path: Path, model_name: str) -> None:
    """Load `state` into `model` strictly, or explain the mismatch in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) such as {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) such as {unexpected[0]!r}")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} shape mismatch(es) such as {k!r}: "
                         f"{tuple(state[k].shape)} vs {tuple(own[k].shape)}")
        raise UserError(f"{path} does not fit model {model_name} ({'; '.join(parts)}); "
                        f"check --model and --dataset")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"{path} does not fit model {model_name} ({first})") from None


def load_robustbench(name: str, dataset: str, threat_model: str, model_dir: str) -> nn.Module:
    """A RobustBench zoo model (weights from `model_dir`, else downloaded; fails fast offline)."""
    from benchmark.compat import import_robustbench
    from benchmark.datasets.base import network_timeout

    if dataset not in RB_DATASETS:
        raise UserError(f"--robustbench supports datasets {', '.join(RB_DATASETS)}, "
                        f"not {dataset}")
    if threat_model != "Linf":
        raise UserError(f"the harness evaluates L-inf attacks only; --threat-model "
                        f"{threat_model} is not supported")
    rb = import_robustbench()
    target = Path(model_dir) / dataset / threat_model / f"{name}.pt"
    try:
        with network_timeout():
            model = rb.load_model(model_name=name, dataset=dataset, threat_model=threat_model,
                                  model_dir=model_dir)
    except KeyError:
        raise UserError(f"unknown RobustBench model {name!r} for {dataset}/{threat_model}; see "
                        f"https://robustbench.github.io") from None
    except Exception as err:  # noqa: BLE001 - network or file failures become one line
        raise UserError(f"could not load RobustBench model {name} ({type(err).__name__}); "
                        f"no network? download it elsewhere into {target}, or evaluate a local "
                        f"file with --checkpoint") from None
    return model.eval()


# --- the command -----------------------------------------------------------------------------
def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "model"


def _print_summary(title: str, classes: list[str], attacks: dict[str, Any]) -> None:
    names = [a for a in ("clean", "pgd20", "cw", "autoattack") if a in attacks]
    width = max(12, *(len(c) for c in classes))
    print(title)
    print(f"{'class':<{width}}  " + "  ".join(f"{a:>10}" for a in names))
    for i, c in enumerate(classes):
        print(f"{c:<{width}}  " + "  ".join(f"{attacks[a]['per_class'][i]:>10.3f}"
                                            for a in names))
    for stat in ("avg", "worst"):
        print(f"{stat:<{width}}  " + "  ".join(f"{attacks[a][stat]:>10.3f}" for a in names))
    worst = ", ".join(f"{a}: {attacks[a]['worst_class']}" for a in names)
    print(f"worst class ({worst})")


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate one checkpoint or RobustBench model per class and write a run record."""
    from benchmark.datasets.base import DATASETS, load_splits
    from benchmark.evaluate import EvalSet, Evaluator, weights_digest
    from benchmark.job import eval_cost, evaluate_checkpoint, write_record
    from benchmark.lock import RunLock
    from benchmark.models import build_model, resolve_device
    from benchmark.protocols import apply_overrides, get_protocol
    from benchmark.provenance import code_digests
    from benchmark.records import (
        RunPaths,
        RunSpec,
        atomic_write_json,
        claim_spec,
        compare_spec,
        environment,
    )
    from benchmark.schema import TrainSummary

    if bool(args.checkpoint) == bool(args.robustbench):
        raise UserError("pass exactly one of --checkpoint PATH or --robustbench MODEL_NAME")
    protocol = get_protocol(args.dataset, args.preset)
    info = DATASETS.get(args.dataset)
    if args.checkpoint:
        path = Path(args.checkpoint)
        model_name = args.model or protocol.model
        model = build_model(model_name, info.num_classes, info.shape)
        fit(model, read_checkpoint(path), path, model_name)
        label = args.label or f"ckpt-{path.stem}"
        source: dict[str, Any] = {"kind": "checkpoint", "path": str(path.resolve()),
                                  "model": model_name}
    else:
        if args.model:
            raise UserError("--model is for --checkpoint; RobustBench models bring their own")
        model_name = f"robustbench:{args.robustbench}"
        model = load_robustbench(args.robustbench, args.dataset, args.threat_model,
                                 args.model_dir)
        label = args.label or f"rb-{args.robustbench}"
        source = {"kind": "robustbench", "name": args.robustbench,
                  "threat_model": args.threat_model}
    label = _label(label)
    protocol = apply_overrides(protocol, {"model": model_name})
    device = resolve_device(args.device)
    model = model.to(device).eval()
    digest = weights_digest(model)

    spec = RunSpec(label, args.dataset, args.preset, 0, protocol.as_dict(),
                   {"source": source["kind"], "weights": digest},
                   code=code_digests(None))
    paths = RunPaths.of(Path(args.results), args.dataset, args.preset, label, 0)
    if compare_spec(paths, spec).action == "conflict":
        raise UserError(f"{paths.root} holds another model or protocol under the label {label}; "
                        f"pass --label NAME, or delete that directory")
    splits = load_splits(args.dataset, seed=0, val_per_class=protocol.val_per_class,
                         train_per_class=protocol.train_per_class,
                         test_per_class=protocol.test_per_class,
                         data_dir=Path(args.data_dir) if args.data_dir else None,
                         download=args.download)
    lock = RunLock(paths.root)
    lock.wait(on_wait=lambda owner: print(f"waiting for {paths.root}, held by "
                                          f"{owner.describe()}", file=sys.stderr))
    try:
        claim_spec(paths, spec)
        env = environment(device)
        atomic_write_json(paths.env, env)
        data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
        evaluator = Evaluator(protocol, device, show_progress=not args.quiet)
        entry, rel = evaluate_checkpoint(evaluator, model, data, paths, "best", None)
        evals, files = dict.fromkeys(CHECKPOINTS, entry), dict.fromkeys(CHECKPOINTS, rel)
        write_record(paths, spec, splits.info.classes, env, TrainSummary(), evals, files,
                     protocol, [], source=source, eval_cost=eval_cost(evals, files))
    finally:
        lock.release()
    classes = list(splits.info.classes)
    attacks = {k: v for k, v in entry.items() if k not in ("epoch", "seconds", "peak_memory_mb")}
    n = len(splits.test_y)
    _print_summary(f"{args.dataset}/{args.preset} {label}: {n} test points, "
                   f"{protocol.aa_description()}", classes, attacks)
    print(f"wrote {paths.record}", file=sys.stderr)
    return 0
