"""Command line: fairbench run | status | report | list | eval | new-method."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

DEFAULT_RESULTS = "results"


def _read_config(config: str) -> dict[str, Any]:
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


def _parse_sets(items: Sequence[str], config: str | None
                ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """--set key=value / --config FILE.yaml -> (protocol overrides, {method: {field: value}})."""
    pairs: list[tuple[str, Any]] = []
    for key, value in (_read_config(config) if config else {}).items():
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


def _check_label(text: str, flag: str) -> str:
    """A tag or sweep value that can name a directory: letters, digits and _ . + = -."""
    if not _LABEL.match(text):
        raise UserError(f"{flag} {text!r} may only use letters, digits and _ . + = -")
    return text


def _parse_sweep(items: Sequence[str], methods: Sequence[str]) -> dict[str, list[str]]:
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
        sweep[key] = [_check_label(v, f"--sweep {key}") for v in vals]
    return sweep


MAX_SEED = 2**32 - 1


def _seeds(text: str) -> list[int]:
    """Seeds from "0,1,2" or "0 1 2": integers in 0..2^32-1, at least one."""
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise UserError(f"seeds must be integers, got {text!r}") from None
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad or not seeds:
        raise UserError(f"seeds must be integers in 0..{MAX_SEED}, got {text!r}")
    return list(dict.fromkeys(seeds))


def _slurm_parameters(text: str | None) -> dict[str, Any]:
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


def _check_submitit(params: dict[str, Any], cluster: str | None) -> None:
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


def _resolve_methods(spec: str) -> list[str]:
    from benchmark.method import load_methods

    registry = load_methods()
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


def _preflight(waves: Sequence[Sequence[Any]], results: str) -> None:
    """Before any work: refuse conflicting run directories; say what is reused and what is new
    because its code changed."""
    from benchmark.job import spec_of
    from benchmark.records import compare_spec

    jobs = [job for wave in waves for job in wave]
    reused, changed = 0, []
    for job in jobs:
        verdict = compare_spec(job.paths(), spec_of(job)[0])
        if verdict.action == "conflict":
            raise UserError(f"{job.name}: {verdict.note}")
        if verdict.action == "same" and job.paths().record.exists():
            reused += 1
        elif verdict.action == "set_aside":
            changed.append(f"{job.name} ({verdict.note})")
    print(f"fairbench: {len(jobs)} run(s) in {len(waves)} wave(s) -> {results}"
          + (f"; {reused} already finished there: reused, not retrained (--results DIR starts "
             f"afresh)" if reused else ""), file=sys.stderr)
    if changed:
        print(f"fairbench: {len(changed)} run(s) retrained because they ran with other code or "
              f"had failed; their old files move to <method>/.superseded/ (use --results DIR to "
              f"keep runs of different code apart): {'; '.join(changed)}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS, default_data_dir
    from benchmark.launch import run_local, run_submitit
    from benchmark.plan import check_overrides_used, plan, record_plan

    # 1. every input is parsed and validated before any file or directory is written
    protocol_overrides, method_overrides = _parse_sets(args.set, args.config)
    seeds = _seeds(args.seeds)
    methods = _resolve_methods(args.methods)
    params = _slurm_parameters(args.slurm)
    cluster = "local" if args.launcher == "submitit-local" else None
    if args.launcher != "local":
        _check_submitit(params, cluster)
    from benchmark.lock import RunLock

    RunLock(Path(args.results))  # FAIRBENCH_LOCK_* settings, checked (nothing is created)
    info = DATASETS.get(args.dataset)
    if args.launcher == "local":  # cluster jobs check the device on their own node
        from benchmark.models import resolve_device

        resolve_device(args.device)
    from benchmark.method import load_methods

    for m in method_overrides:
        load_methods().get(m)
    sweep = _parse_sweep(args.sweep, methods)
    tag = _check_label(args.tag, "--tag")
    terminal = sys.stderr.isatty()  # progress bars on a terminal, plain lines in a log file
    waves = plan(dataset=args.dataset, preset=args.preset, methods=methods, seeds=seeds,
                 method_overrides=method_overrides, sweep=sweep, tag=tag, results=args.results,
                 overrides=protocol_overrides, data_dir=args.data_dir, download=args.download,
                 device=args.device, show_progress=not args.quiet and terminal,
                 epoch_lines=not args.quiet and not terminal)
    check_overrides_used(waves, method_overrides)
    if info.check is not None and not args.download:  # missing data: stop before any work
        info.check(Path(args.data_dir) if args.data_dir else default_data_dir())
    check_writable_dir(Path(args.results), "--results")
    _preflight(waves, args.results)
    # 2. the work
    record_plan(waves)
    t0 = time.perf_counter()

    def error(job: Any, message: str) -> None:
        print(f"error: {job.name}: {message}", file=sys.stderr)

    def note(job: Any, message: str) -> None:
        print(f"fairbench: {job.name}: {message}", file=sys.stderr)

    def progress(text: str) -> None:
        print(f"fairbench: {text}", file=sys.stderr, flush=True)

    if args.launcher == "local":
        failures = run_local(waves, on_error=error, on_note=note,
                             on_progress=None if args.quiet else progress)
    else:
        failures = run_submitit(waves, Path(args.results) / ".submitit", cluster=cluster,
                                parameters=params, on_error=error)
    print(f"fairbench: finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_report:
        try:
            from benchmark.report.build import FORMATS

            _report(args.results, args.dataset, args.preset, None, FORMATS, echo=True)
        except UserError as err:  # e.g. every run failed: the failures below say why
            stale = Path(args.results) / args.dataset / args.preset / "report"
            if stale.is_dir():  # it showed runs that have since failed or been set aside
                shutil.rmtree(stale)
                err = UserError(f"{err}; removed the old report in {stale}")
            print(f"error: report: {err}", file=sys.stderr)
    if failures:
        print(f"error: {len(failures)} run(s) failed: {', '.join(j.name for j, _ in failures)}"
              f" (the others' records are kept; `fairbench status` shows why)", file=sys.stderr)
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
    _check_names(args.dataset, args.preset)
    formats = tuple(f for f in args.format.replace(",", " ").split())
    from benchmark.report.build import FORMATS

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown report format(s) {bad}; use {', '.join(FORMATS)}")
    if args.out:
        check_writable_dir(Path(args.out), "--out")
    _report(args.results, args.dataset, args.preset, args.out, formats, echo=True)
    return 0


def _check_names(dataset: str | None, preset: str | None) -> None:
    """Unknown dataset or preset names: one line with the closest name, before reading files."""
    from benchmark.datasets import DATASETS
    from benchmark.protocols import get_protocol

    if dataset:
        DATASETS.get(dataset)
        if preset:
            get_protocol(dataset, preset)


def cmd_status(args: argparse.Namespace) -> int:
    from benchmark.plan import PLAN_FILE, read_plan
    from benchmark.records import RunPaths, run_state

    _check_names(args.dataset, args.preset)
    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise UserError(f"--results {results} is a file, not a results directory")
    rows: dict[tuple[str, str, str, int], tuple[str, str]] = {}
    for run_dir in sorted(results.glob("*/*/*/seed*")):
        seed = run_dir.name.removeprefix("seed")
        if run_dir.is_dir() and seed.isdigit():
            dataset, preset, method = run_dir.parts[-4:-1]
            rows[(dataset, preset, method, int(seed))] = run_state(RunPaths(run_dir))
    for plan_file in sorted(results.glob(f"*/*/{PLAN_FILE}")):
        dataset, preset = plan_file.parts[-3:-1]
        for run in read_plan(plan_file).values():
            rows.setdefault((dataset, preset, run["method"], run["seed"]), ("not started", ""))
    rows = {k: v for k, v in rows.items() if (not args.dataset or k[0] == args.dataset)
            and (not args.preset or k[1] == args.preset)}
    if not rows:
        print(f"no runs under {args.results}")
        return 0
    names = {k: f"{k[0]}/{k[1]}/{k[2]}/seed{k[3]}" for k in rows}
    width = max(len(n) for n in names.values())
    print(f"{'run':<{width}}  {'status':<12} detail")
    for key in sorted(rows):
        state, detail = rows[key]
        detail += "; rerun the command to resume" if state == "interrupted" else ""
        print(f"{names[key]:<{width}}  {state:<12} {detail}".rstrip())
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
        if args.dataset is not None:
            DATASETS.get(args.dataset)  # unknown: one line naming the datasets
        for key in PRESETS.names():
            if args.dataset is not None and not key.startswith(f"{args.dataset}/"):
                continue
            p = PRESETS.get(key)
            print(f"[{key}]")
            for field, value in p.as_dict().items():
                print(f"  {field} = {value}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from benchmark.score import cmd_eval as score_eval

    return score_eval(args)


def cmd_new_method(args: argparse.Namespace) -> int:
    from benchmark.scaffold import write_template, write_test_template

    path = write_template(args.name, Path(args.dir))
    test = write_test_template(args.name, Path(args.tests_dir))
    print(f"wrote {path}{f' and {test}' if test else ''}; edit its loss() and the test, then "
          f"`fairbench list methods` and `make test`")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), like every other error of the CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} -h`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fairbench", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="train and evaluate methods, then write the report")
    run.add_argument("--dataset", default="fmnist")
    run.add_argument("--methods", default="core",
                     help="comma list or fnmatch patterns; 'core' = the core methods, 'all' = "
                          "every registered method")
    run.add_argument("--seeds", default="0", help="e.g. 0,1,2")
    run.add_argument("--preset", default="quick")
    run.add_argument("--results", default=DEFAULT_RESULTS)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="protocol field (epochs=5) or method hyperparameter (trades.beta=3)")
    run.add_argument("--config", help="YAML file of the same overrides")
    run.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                     help="run every value as its own variant (trades.beta=1,3,6 or "
                          "epochs=5,10); several --sweep make a grid")
    run.add_argument("--tag", default="", help="name this command's settings: runs go to "
                                               "METHOD[TAG] beside the untagged ones")
    run.add_argument("--data-dir", help="where the dataset files are (default ./data)")
    run.add_argument("--download", action="store_true", help="download missing datasets")
    run.add_argument("--device", help="cpu, cuda, cuda:1 (default: auto)")
    run.add_argument("--launcher", choices=("local", "submitit", "submitit-local"),
                     default="local", help="submitit = SLURM job arrays (checkpoint+requeue)")
    run.add_argument("--slurm", help='submitit parameters as JSON, e.g. {"timeout_min": 600, '
                                     '"slurm_partition": "gpu", "gpus_per_node": 1}')
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--quiet", action="store_true",
                     help="no progress output (default: bars on a terminal, else one line per "
                          "epoch and per finished run)")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="tables and plots from run records")
    rep.add_argument("--dataset", default="fmnist")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--results", default=DEFAULT_RESULTS)
    rep.add_argument("--format", default="latex,md,csv,html",
                     help="latex, md, csv, html (comma list)")
    rep.add_argument("--out", help="output directory (default results/D/P/report)")
    rep.set_defaults(func=cmd_report)

    st = sub.add_parser("status", help="list runs and their state")
    st.add_argument("--results", default=DEFAULT_RESULTS)
    st.add_argument("--dataset")
    st.add_argument("--preset")
    st.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="list methods, datasets, models or presets")
    ls.add_argument("what", choices=("methods", "datasets", "models", "presets"))
    ls.add_argument("--dataset", default=None, help="presets of this dataset only")
    ls.set_defaults(func=cmd_list)

    ev = sub.add_parser("eval", help="per-class evaluation of any checkpoint or RobustBench model")
    from benchmark.score import add_eval_arguments

    add_eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    new = sub.add_parser("new-method", help="write a documented method template")
    new.add_argument("name")
    new.add_argument("--dir", default=str(Path(__file__).resolve().parent.parent / "methods"))
    new.add_argument("--tests-dir", default=str(Path(__file__).resolve().parent.parent / "tests"),
                     help="where its test template goes (skipped if that file exists)")
    new.set_defaults(func=cmd_new_method)
    for command in sub.choices.values():  # `fairbench run ... --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks of errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Errors are one line (exit 2 for bad input, 1 for anything else);
    `--debug` shows the traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # -h, or a one-line usage error already printed
        return int(done.code or 0)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        _debug(args)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fairbench list presets | head`
        sys.stderr.close()
        return 0
    except OSError as err:
        _debug(args)
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where} (check the path, free space and permissions; "
              f"rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback on request
        _debug(args)
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"error: internal error {type(err).__name__}: {first} (rerun with --debug for the "
              f"traceback, and please report it)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130


def _debug(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
