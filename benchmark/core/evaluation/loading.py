"""Models from outside the harness, for `fairbench eval`: a checkpoint file read without
unpickling code (a raw state dict, or one under "model" / "state_dict"), or a RobustBench zoo
model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from benchmark.common.errors import UserError

RB_DATASETS = ("cifar10", "cifar100")


# --- loading ---------------------------------------------------------------------------------
def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict in `path`, read without unpickling code; one-line UserError otherwise."""
    from benchmark.common.fileio import load_state

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
    from benchmark.common.compat import import_robustbench
    from benchmark.core.datasets.base import network_timeout

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

