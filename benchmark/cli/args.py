"""Parsing and checking command-line values: --set/--config, --sweep, seeds, --slurm, methods,
directories. Each bad value is one line naming the fix."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError

DEFAULT_RESULTS = "results"


def read_config(config: str) -> dict[str, Any]:
    """A YAML mapping of overrides, or a one-line UserError."""
    import yaml

    path = Path(config)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise UserError(f"config file {config} {what}; pass a YAML file with --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"{config} is not valid YAML{line}; fix it (expected field: value "
                        f"lines, or method: {{field: value}})") from None
    if not isinstance(data, dict):
        raise UserError(f"{config} must hold a mapping of field: value")
    return data


def parse_sets(items: Sequence[str], config: str | None
                ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """--set key=value / --config FILE.yaml -> (protocol overrides, {method: {field: value}})."""
    pairs: list[tuple[str, Any]] = []
    for key, value in (read_config(config) if config else {}).items():
        if isinstance(value, dict):  # method: {field: value}
            pairs += [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            pairs.append((str(key), value))
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    protocol: dict[str, Any] = {}
    methods: dict[str, dict[str, Any]] = {}
    for key, value in pairs:
        if "." in key:
            method, field = key.split(".", 1)
            methods.setdefault(method, {})[field] = value
        else:
            protocol[key] = value
    return protocol, methods


_LABEL = re.compile(r"^[A-Za-z0-9_.+=-]*$")


def check_label(text: str, flag: str) -> str:
    """A tag or sweep value that can name a directory: letters, digits and _ . + = -."""
    if not _LABEL.match(text):
        raise UserError(f"{flag} {text!r} may only use letters, digits and _ . + = -")
    return text


def parse_sweep(items: Sequence[str], methods: Sequence[str]) -> dict[str, list[str]]:
    """--sweep KEY=V1,V2 (repeatable) -> {key: [values]}; a method key must name a method being
    run; values must be able to name a directory."""
    sweep: dict[str, list[str]] = {}
    for item in items:
        key, _, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not key or not vals:
            raise UserError(f"--sweep expects KEY=V1,V2,..., got {item!r}")
        if key in sweep:
            raise UserError(f"--sweep {key} is given twice; list all its values once")
        if "." in key and key.split(".", 1)[0] not in methods:
            raise UserError(f"--sweep {key} is for a method that is not being run (running: "
                            f"{', '.join(methods)}); add it to --methods")
        sweep[key] = [check_label(v, f"--sweep {key}") for v in vals]
    return sweep


MAX_SEED = 2**32 - 1


def parse_seeds(text: str) -> list[int]:
    """Seeds from "0,1,2" or "0 1 2": integers in 0..2^32-1, at least one."""
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise UserError(f"seeds must be integers, got {text!r}") from None
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad or not seeds:
        raise UserError(f"seeds must be integers in 0..{MAX_SEED}, got {text!r}")
    return list(dict.fromkeys(seeds))


def parse_workers(workers: int | None, devices: str | None, device: str | None,
                  launcher: str) -> tuple[int, list[str]]:
    """--workers N and --devices LIST|all -> (workers, devices); checked against this machine
    (CUDA devices by index or name). No --workers: one per listed device, else one."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if devices is not None and device is not None:
        raise UserError("--device and --devices both given; use --devices LIST (one run per "
                        "worker, workers spread over the devices)")
    if launcher != "local" and (workers or devices):
        raise UserError("--workers/--devices are for the local launcher; the SLURM launcher "
                        "runs one run per array task (set GPUs in --slurm)")
    names = _device_names(devices) if devices is not None else []
    return (workers or len(names) or 1), names


def _device_names(text: str) -> list[str]:
    import torch

    from benchmark.common.device import resolve_device

    if text.strip() == "all":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError("--devices all found no CUDA device here; drop it to run on the "
                            "CPU, or list devices (cpu, cuda:0, ...)")
        return [f"cuda:{i}" for i in range(count)]
    names = [f"cuda:{d}" if d.isdigit() else d for d in text.replace(",", " ").split()]
    if not names:
        raise UserError("--devices needs a list (cuda:0,cuda:1 or 0,1) or all")
    for name in names:
        resolve_device(name)  # one line for a device this machine does not have
    return names


def slurm_parameters(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"--slurm is not valid JSON ({err.msg} at column {err.colno}); e.g. "
                        f"--slurm '{{\"timeout_min\": 600, \"gpus_per_node\": 1}}'") from None
    if not isinstance(params, dict):
        raise UserError("--slurm must be a JSON object of submitit parameters, e.g. "
                        "'{\"timeout_min\": 600}'")
    return params


def check_submitit(params: dict[str, Any], cluster: str | None) -> None:
    """submitit's own check of the --slurm parameters, before any work."""
    import submitit

    with tempfile.TemporaryDirectory() as tmp:
        try:
            submitit.AutoExecutor(folder=tmp, cluster=cluster).update_parameters(**params)
        except Exception as err:  # noqa: BLE001 - submitit raises several kinds
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"--slurm parameters refused by submitit ({first}); see "
                            f"submitit's AutoExecutor parameters") from None


def check_writable_dir(path: Path, flag: str) -> None:
    """Create `path` if needed and prove it writable, or one line naming it and the fix."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory; pass a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fairbench-write-test-"):
            pass
    except OSError as err:
        raise UserError(f"{flag} {path} is not usable ({err.strerror or err}); pass a writable "
                        f"directory") from None


def resolve_methods(spec: str) -> list[str]:
    from benchmark.catalog import method_registry

    registry = method_registry()
    names: list[str] = []
    for token in spec.replace(",", " ").split():
        if token == "core":
            found = [n for n in registry.names() if registry.get(n).core]
        elif token == "all":  # every registered method ("_" names are test-only)
            found = [n for n in registry.names() if not n.startswith("_")]
        else:
            found = registry.match(token)
        names += [n for n in found if n not in names]
    if not names:
        raise UserError("no methods selected; see `fairbench list methods`")
    return names



def add_run_arguments(parser: Any) -> None:
    """The arguments `run` and `tune` share: what to run, where, on what, and how to launch."""
    parser.add_argument("--dataset", default="fmnist")
    parser.add_argument("--methods", default="core",
                        help="comma list or fnmatch patterns; 'core' = the core methods, 'all' "
                             "= every registered method")
    parser.add_argument("--seeds", default="0", help="e.g. 0,1,2")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--results", default=DEFAULT_RESULTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="protocol field (epochs=5) or method hyperparameter (trades.beta=3)")
    parser.add_argument("--config", help="YAML file of the same overrides")
    parser.add_argument("--data-dir", help="where the dataset files are (default ./data)")
    parser.add_argument("--download", action="store_true", help="download missing datasets")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--workers", type=int, default=None,
                        help="runs at once, one process each (default: one per --devices "
                             "entry, else 1); several workers may share a device")
    parser.add_argument("--devices", default=None, metavar="LIST|all",
                        help="devices the workers use in turn: cuda:0,cuda:1 (or 0,1), cpu, "
                             "or all (every CUDA device)")
    parser.add_argument("--launcher", choices=("local", "submitit", "submitit-local"),
                        default="local", help="submitit = SLURM job arrays (checkpoint+requeue)")
    parser.add_argument("--slurm", help='submitit parameters as JSON, e.g. {"timeout_min": 600, '
                                        '"slurm_partition": "gpu", "gpus_per_node": 1}')
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output (default: bars on a terminal, else one line "
                             "per epoch and per finished run)")
