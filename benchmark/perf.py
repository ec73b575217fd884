"""`make perf`: training-step cost of methods and speed paths, as ratios measured in one run.

Every variant trains on the same batches from the same starting weights; variants are
interleaved round by round (so background load hits them alike) and the report gives the median
per-batch time ratio to the reference, plus exact passes per example. Absolute seconds on a
shared 2-core machine mean little; ratios measured side by side do.

    python -m benchmark.perf [--methods pgd_at,trades,ham] [--rounds 5] [--init PATH]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.attacks import PassCounter
from benchmark.datasets import TensorLoader, load_splits
from benchmark.evaluate import load_state
from benchmark.method import TrainContext, make_method
from benchmark.models import auto_device, build_model
from benchmark.protocols import get_protocol


def _variants(methods: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, method, protocol overrides): every method, then the speed paths on the first."""
    out = [(m, m, {}) for m in methods]
    out += [(f"{methods[0]}+bf16", methods[0], {"amp": True}),
            (f"{methods[0]}+channels_last", methods[0], {"channels_last": True})]
    return out


def measure(dataset: str, preset: str, methods: list[str], rounds: int, batches: int,
            init: Path | None) -> dict[str, Any]:
    device = auto_device()
    base = get_protocol(dataset, preset)
    splits = load_splits(dataset, seed=0, val_per_class=base.val_per_class,
                         train_per_class=base.train_per_class)
    info = splits.info
    torch.manual_seed(0)
    start = build_model(base.model, info.num_classes, info.shape)
    if init is not None:
        start.load_state_dict(load_state(init)["model"])
    loader = TensorLoader(splits.train_x, splits.train_y, base.batch_size, device=device,
                          shuffle=True, seed=0)
    data = [b for _, b in zip(range(batches), loader, strict=False)]
    val = TensorLoader(splits.val_x, splits.val_y, base.eval_batch_size, device=device)
    times: dict[str, list[float]] = {}
    passes: dict[str, float] = {}
    for r in range(rounds):
        for label, name, overrides in _variants(methods):
            protocol = get_protocol(dataset, preset, overrides)
            method = make_method(name, protocol)
            model = copy.deepcopy(start).to(device)
            if protocol.channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum)
            counter = PassCounter().attach(model)
            ctx = TrainContext(protocol=protocol, num_classes=info.num_classes, device=device,
                               counter=counter, val_loader=val)
            torch.manual_seed(r)
            model.train()
            t0 = time.perf_counter()
            for x, y in data:
                if protocol.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with (torch.autocast(device.type, dtype=torch.bfloat16) if protocol.amp
                      else torch.autocast(device.type, enabled=False)):
                    loss = method.loss(model, x, y, ctx)
                if loss is not None:
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            times.setdefault(label, []).append((time.perf_counter() - t0) / len(data))
            passes[label] = counter.total / sum(len(y) for _, y in data)
    ref = methods[0]
    rows = {label: {"median_s_per_batch": statistics.median(ts),
                    "time_ratio_to_" + ref: statistics.median(
                        t / t_ref for t, t_ref in zip(ts, times[ref], strict=True)),
                    "passes_per_example": passes[label]}
            for label, ts in times.items()}
    return {"dataset": dataset, "preset": preset, "device": str(device), "rounds": rounds,
            "batches": len(data), "batch_size": base.batch_size,
            "threads": torch.get_num_threads(), "init": str(init) if init else "random",
            "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fmnist")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--methods", default="pgd_at,trades,ham,frl_rwrm")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--init", type=Path, help="weights to start from (e.g. a model_last.pt "
                                                  "of a pgd_at run, so HAM drops examples)")
    parser.add_argument("--out", type=Path, default=Path("results/perf.json"))
    args = parser.parse_args()
    init = args.init
    if init is None:
        guess = Path(f"results/{args.dataset}/{args.preset}/pgd_at/seed0/model_last.pt")
        init = guess if guess.exists() else None
    report = measure(args.dataset, args.preset, args.methods.split(","), args.rounds,
                     args.batches, init)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    ref = args.methods.split(",")[0]
    print(f"{report['rounds']} interleaved rounds x {report['batches']} batches of "
          f"{report['batch_size']} on {report['device']} ({report['threads']} threads), "
          f"start weights: {report['init']}")
    print(f"| variant | s/batch (median) | time / {ref} | passes per example |")
    print("|---|---:|---:|---:|")
    for label, row in report["results"].items():
        print(f"| {label} | {row['median_s_per_batch']:.3f} | "
              f"{row['time_ratio_to_' + ref]:.2f} | {row['passes_per_example']:.1f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
