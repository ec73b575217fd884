"""Command line: fairbench run | status | report | list | eval | new-method."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

DEFAULT_RESULTS = "results"


def _parse_sets(items: Sequence[str], config: str | None
                ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """--set key=value / --config FILE.yaml -> (protocol overrides, {method: {field: value}})."""
    pairs: list[tuple[str, Any]] = []
    if config:
        import yaml

        path = Path(config)
        if not path.exists():
            raise UserError(f"config file {config} not found")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise UserError(f"{config} must hold a mapping of field: value")
        for key, value in data.items():
            if isinstance(value, dict):  # method: {field: value}
                pairs += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                pairs.append((key, value))
    for item in items:
        if "=" not in item:
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


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise UserError(f"seeds must be integers, got {text!r}") from None


def _resolve_methods(spec: str) -> list[str]:
    from benchmark.method import load_methods

    registry = load_methods()
    names: list[str] = []
    for token in spec.replace(",", " ").split():
        found = ([n for n in registry.names() if registry.get(n).core] if token == "core"
                 else registry.match(token))
        names += [n for n in found if n not in names]
    if not names:
        raise UserError("no methods selected; see `fairbench list methods`")
    return names


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS, default_data_dir
    from benchmark.launch import run_local, run_submitit
    from benchmark.plan import plan

    protocol_overrides, method_overrides = _parse_sets(args.set, args.config)
    methods = _resolve_methods(args.methods)
    info = DATASETS.get(args.dataset)
    if args.launcher == "local":  # cluster jobs check the device on their own node
        from benchmark.models import resolve_device

        resolve_device(args.device)
    if info.check is not None and not args.download:  # missing data: stop before any work
        info.check(Path(args.data_dir) if args.data_dir else default_data_dir())
    from benchmark.method import load_methods

    for m in method_overrides:
        load_methods().get(m)
    waves = plan(dataset=args.dataset, preset=args.preset, methods=methods,
                 seeds=_int_list(args.seeds), method_overrides=method_overrides,
                 results=args.results, overrides=protocol_overrides, data_dir=args.data_dir,
                 download=args.download, device=args.device, show_progress=not args.quiet)
    for wave in waves:  # validate every job (names, hparams, protocol) before any work
        for job in wave:
            job.make_method()
    n = sum(len(w) for w in waves)
    finished = sum(job.paths().record.exists() for wave in waves for job in wave)
    reused = (f"; {finished} already finished there: reused, not retrained (--results DIR "
              f"starts afresh)" if finished else "")
    print(f"fairbench: {n} run(s) in {len(waves)} wave(s) -> {args.results}{reused}",
          file=sys.stderr)
    t0 = time.perf_counter()
    if args.launcher == "local":
        failures = run_local(waves, on_error=lambda j, e: print(f"error: {j.name}: {e}",
                                                                 file=sys.stderr))
    else:
        cluster = "local" if args.launcher == "submitit-local" else None
        params = json.loads(args.slurm) if args.slurm else {}
        failures = run_submitit(waves, Path(args.results) / ".submitit", cluster=cluster,
                                parameters=params)
        for job, err in failures:
            print(f"error: {job.name}: {err}", file=sys.stderr)
    print(f"fairbench: finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_report:
        _report(args.results, args.dataset, args.preset, None, ("latex", "md", "csv"),
                echo=True)
    if failures:
        print(f"error: {len(failures)} run(s) failed: {', '.join(j.name for j, _ in failures)}"
              f" (records of the others are kept; rerun the same command to retry)",
              file=sys.stderr)
    return 1 if failures else 0


def _report(results: str, dataset: str, preset: str, out: str | None,
            formats: Sequence[str], echo: bool) -> None:
    from benchmark.report import build_report

    written = build_report(Path(results), dataset, preset,
                           out=Path(out) if out else None, formats=formats)
    if echo and "table_md" in written:
        print(Path(written["table_md"]).read_text())
    for path in written.values():
        print(f"wrote {path}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    formats = tuple(f for f in args.format.replace(",", " ").split())
    bad = [f for f in formats if f not in ("latex", "md", "csv")]
    if bad:
        raise UserError(f"unknown report format(s) {bad}; use latex, md, csv")
    _report(args.results, args.dataset, args.preset, args.out, formats, echo=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from benchmark.records import RunPaths, iter_run_dirs, read_json, read_jsonl, status

    rows = []
    for d in iter_run_dirs(Path(args.results)):
        paths = RunPaths(d)
        spec = read_json(paths.spec)
        if args.dataset and spec["dataset"] != args.dataset:
            continue
        epochs = len(read_jsonl(paths.log))
        total = spec["protocol"]["epochs"]
        own = total - (spec["warm_start"] or {}).get("epoch", 0)
        rows.append((f"{spec['dataset']}/{spec['preset']}/{spec['method']}/seed{spec['seed']}",
                     status(paths), f"{epochs}/{own}"))
    if not rows:
        print(f"no runs under {args.results}")
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'status':<12} epochs")
    for run, st, ep in rows:
        print(f"{run:<{width}}  {st:<12} {ep}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS
    from benchmark.method import load_methods
    from benchmark.models import MODELS
    from benchmark.protocols import PRESETS, get_protocol

    what = args.what
    if what == "methods":
        registry = load_methods()
        for name in registry.names():
            cls = registry.get(name)
            hp = ", ".join(f"{k}={v}" for k, v in cls().hparams().items()) or "-"
            warm = f"  [warm start: {cls.warm_start_base}]" if cls.warm_start_base else ""
            core = "  [core]" if cls.core else ""
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"{name:<12} {hp}{warm}{core}\n    {doc}")
    elif what == "datasets":
        for name in DATASETS.names():
            info = DATASETS.get(name)
            print(f"{name:<11} {'x'.join(map(str, info.shape))}, {info.num_classes} classes; "
                  f"{info.source}")
    elif what == "models":
        for name in MODELS.names():
            doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:<16} {doc[0] if doc else ''}")
    else:
        get_protocol("fmnist", "smoke")  # registers presets
        for key in PRESETS.names():
            p = PRESETS.get(key)
            print(f"[{key}]")
            for field, value in p.as_dict().items():
                print(f"  {field} = {value}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from benchmark.score import cmd_eval as score_eval

    return score_eval(args)


def cmd_new_method(args: argparse.Namespace) -> int:
    from benchmark.scaffold import write_template

    path = write_template(args.name, Path(args.dir))
    print(f"wrote {path}; edit its loss(), then `fairbench list methods`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate methods, then write the report")
    run.add_argument("--dataset", default="fmnist")
    run.add_argument("--methods", default="core",
                     help="comma list or fnmatch patterns; 'core' = the core methods")
    run.add_argument("--seeds", default="0", help="e.g. 0,1,2")
    run.add_argument("--preset", default="quick")
    run.add_argument("--results", default=DEFAULT_RESULTS)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="protocol field (epochs=5) or method hyperparameter (trades.beta=3)")
    run.add_argument("--config", help="YAML file of the same overrides")
    run.add_argument("--data-dir", help="where the dataset files are (default ./data)")
    run.add_argument("--download", action="store_true", help="download missing datasets")
    run.add_argument("--device", help="cpu, cuda, cuda:1 (default: auto)")
    run.add_argument("--launcher", choices=("local", "submitit", "submitit-local"),
                     default="local", help="submitit = SLURM job arrays (checkpoint+requeue)")
    run.add_argument("--slurm", help='submitit parameters as JSON, e.g. {"timeout_min": 600, '
                                     '"slurm_partition": "gpu", "gpus_per_node": 1}')
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="tables and plots from run records")
    rep.add_argument("--dataset", default="fmnist")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--results", default=DEFAULT_RESULTS)
    rep.add_argument("--format", default="latex,md,csv", help="latex, md, csv (comma list)")
    rep.add_argument("--out", help="output directory (default results/D/P/report)")
    rep.set_defaults(func=cmd_report)

    st = sub.add_parser("status", help="list runs and their state")
    st.add_argument("--results", default=DEFAULT_RESULTS)
    st.add_argument("--dataset")
    st.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="list methods, datasets, models or presets")
    ls.add_argument("what", choices=("methods", "datasets", "models", "presets"))
    ls.set_defaults(func=cmd_list)

    ev = sub.add_parser("eval", help="per-class evaluation of any checkpoint or RobustBench model")
    from benchmark.score import add_eval_arguments

    add_eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    new = sub.add_parser("new-method", help="write a documented method template")
    new.add_argument("name")
    new.add_argument("--dir", default=str(Path(__file__).resolve().parent.parent / "methods"))
    new.set_defaults(func=cmd_new_method)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
