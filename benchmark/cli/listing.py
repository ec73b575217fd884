"""`fairbench list`: methods, datasets, models, presets or official recipes."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.catalog import method_registry, preset_registry
    from benchmark.core.datasets import DATASETS
    from benchmark.core.models import MODELS

    what = args.what
    if what == "methods":
        registry = method_registry()
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
    elif what == "recipes":
        _list_recipes(markdown=args.markdown)
    elif what == "models":
        for name in MODELS.names():
            doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:<16} {doc[0] if doc else ''}")
    else:
        if args.dataset is not None:
            DATASETS.get(args.dataset)  # unknown: one line naming the datasets
        for key in preset_registry().names():
            if args.dataset is not None and not key.startswith(f"{args.dataset}/"):
                continue
            p = preset_registry().get(key)
            print(f"[{key}]")
            for field, value in p.as_dict().items():
                print(f"  {field} = {value}")
    return 0


def _list_recipes(*, markdown: bool) -> None:
    from benchmark.report.recipes import COLUMNS, recipe_rows, recipes_markdown

    if markdown:
        print(recipes_markdown())
        return
    for row in recipe_rows():
        print(f"{row['method']} [{row['dataset']}]")
        for column in COLUMNS[2:]:
            print(f"  {column}: {row[column]}")


def add_parser(sub: Any) -> None:
    """The `list` command's arguments."""
    ls = sub.add_parser("list", help="list methods, datasets, models, presets or recipes")
    ls.add_argument("what", choices=("methods", "datasets", "models", "presets", "recipes"))
    ls.add_argument("--markdown", action="store_true", help="recipes as a Markdown table")
    ls.add_argument("--dataset", default=None, help="presets of this dataset only")
    ls.set_defaults(func=cmd_list)
