"""`fairbench eval`: per-class scoring of any checkpoint or RobustBench model.

    fairbench eval --checkpoint PATH --model NAME --dataset D [--preset P]
    fairbench eval --robustbench MODEL_NAME --dataset cifar10 --threat-model Linf

The model is evaluated exactly as `fairbench run` evaluates its own checkpoints: the preset's
test set (its `test_per_class`), clean / PGD-20 / CW / AutoAttack per class, through
`benchmark.core.evaluation.evaluator.Evaluator`. Results land in
`results/<dataset>/<preset>/<label>/seed0/`
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.common.errors import UserError

if TYPE_CHECKING:  # the command loads torch when it runs, not when the CLI starts
    from torch import nn

    from benchmark.core.metrics import AttackResult
    from benchmark.core.protocol import Protocol


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


# --- the command -----------------------------------------------------------------------------
def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "model"


def _print_summary(title: str, classes: list[str], attacks: dict[str, AttackResult]) -> None:
    names = [a for a in ("clean", "pgd20", "cw", "autoattack") if a in attacks]
    width = max(12, *(len(c) for c in classes))
    print(title)
    print(f"{'class':<{width}}  " + "  ".join(f"{a:>10}" for a in names))
    for i, c in enumerate(classes):
        print(f"{c:<{width}}  " + "  ".join(f"{attacks[a].per_class[i]:>10.3f}"
                                            for a in names))
    for stat in ("avg", "worst"):
        values = (getattr(attacks[a], stat) for a in names)
        print(f"{stat:<{width}}  " + "  ".join(f"{v:>10.3f}" for v in values))
    worst = ", ".join(f"{a}: {attacks[a].worst_class}" for a in names)
    print(f"worst class ({worst})")


def load_model(args: argparse.Namespace, protocol: Protocol) -> tuple[nn.Module, str, dict]:
    """The model to score, its label and its source (what it is, for the record)."""
    from benchmark.core.datasets.base import DATASETS
    from benchmark.core.evaluation.loading import fit, load_robustbench, read_checkpoint
    from benchmark.core.models import build_model

    if bool(args.checkpoint) == bool(args.robustbench):
        raise UserError("pass exactly one of --checkpoint PATH or --robustbench MODEL_NAME")
    if args.checkpoint:
        info = DATASETS.get(args.dataset)
        path = Path(args.checkpoint)
        model_name = args.model or protocol.model
        model = build_model(model_name, info.num_classes, info.shape)
        fit(model, read_checkpoint(path), path, model_name)
        source = {"kind": "checkpoint", "path": str(path.resolve()), "model": model_name}
        return model, _label(args.label or f"ckpt-{path.stem}"), source
    if args.model:
        raise UserError("--model is for --checkpoint; RobustBench models bring their own")
    model = load_robustbench(args.robustbench, args.dataset, args.threat_model, args.model_dir)
    source = {"kind": "robustbench", "name": args.robustbench, "model":
              f"robustbench:{args.robustbench}", "threat_model": args.threat_model}
    return model, _label(args.label or f"rb-{args.robustbench}"), source


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate one checkpoint or RobustBench model per class and write a run record."""
    from benchmark.catalog import get_protocol
    from benchmark.common.device import resolve_device
    from benchmark.core.protocol import apply_overrides
    from benchmark.runs.score import ScoredModel, score_model

    protocol = get_protocol(args.dataset, args.preset)
    model, label, source = load_model(args, protocol)
    protocol = apply_overrides(protocol, {"model": source["model"]})
    device = resolve_device(args.device)
    scored = ScoredModel(model.to(device).eval(), label, source, protocol, Path(args.results),
                         Path(args.data_dir) if args.data_dir else None, args.download)
    entry, classes, paths = score_model(scored, device, show_progress=not args.quiet)
    _print_summary(f"{args.dataset}/{args.preset} {label}: "
                   f"{sum(entry.attacks['clean'].n_per_class)} test points, "
                   f"{protocol.aa_description()}", classes, entry.attacks)
    print(f"wrote {paths.record}", file=sys.stderr)
    return 0

def add_parser(sub: Any) -> None:
    """The `eval` command's arguments."""
    ev = sub.add_parser("eval", help="per-class evaluation of any checkpoint or RobustBench model")
    add_eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)
