"""What the main table shows: its columns, formatted cells with the best per column marked, the
caption facts and the missing-run note. Renderers (tables.py) only add markup."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from benchmark.core.evaluation.suite import attack_title
from benchmark.report.aggregate import RHO_ATTACK
from benchmark.report.collect import ATTACKS, CHECKPOINTS, Collection
from benchmark.report.expected import BASELINE
from benchmark.report.intervals import mark_separated
from benchmark.report.views import VIEW_TITLES
from benchmark.runs.schema import RunRecord, label_method

PANEL_TITLES = {"best": "Best checkpoint (selected on validation)", "last": "Last checkpoint"}
MANY_CLASSES = 20   # worst-10% column from this many classes on


@dataclass(frozen=True)
class Column:
    """One numeric column of the table, read from the summary frame."""

    key: str             # summary column, e.g. "autoattack_avg"
    group: str           # header over a run of columns
    label: str           # header of this column
    md_label: str        # flat header for Markdown / CSV readers
    kind: str            # acc | spread | rho | seconds | passes
    higher_better: bool
    show_std: bool = True


@dataclass(frozen=True)
class Cell:
    """A formatted value: mean text, std text (or None), bold if best in its column."""

    mean: str | None     # None: no value (rendered as a dash, never blank)
    std: str | None = None
    bold: bool = False


@dataclass(frozen=True)
class Panel:
    checkpoint: str
    title: str
    methods: list[str]
    seeds: list[str]           # "2" or "1/2" (finished / expected)
    cells: list[list[Cell]]    # rows x columns
    labels: list[str]          # display names of the methods (Method.title)
    view: str = ""             # views.py: "defaults" | "tuned"; "" when the table has one view


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    panels: list[Panel]
    time_unit: str             # s | min | h


def attack_titles(records: list[RunRecord]) -> dict[str, str]:
    """Each attack's title from the recorded evaluation settings ("PGD-20", or "PGD-2" on the
    smoke preset); runs that differ show every title."""
    out = {}
    for name in ATTACKS:
        titles = sorted({attack_title(name, r.eval_settings.get(name))
                         for r in records}) or [attack_title(name)]
        out[name] = " / ".join(titles)
    return out


def columns_for(n_classes: int, has_baseline: bool, unbalanced: bool = False,
                titles: dict[str, str] | None = None) -> list[Column]:
    """Accuracy groups (with the pointwise overall accuracy beside the class mean when the test
    points are not class-balanced, as on SVHN), fairness summaries of AutoAttack, then cost."""
    cols = []
    titles = titles or {name: attack_title(name) for name in ATTACKS}
    for attack, title in titles.items():
        cols.append(Column(f"{attack}_avg", title, "Avg.", f"{title} avg", "acc", True))
        if unbalanced:
            cols.append(Column(f"{attack}_overall", title, "All", f"{title} overall", "acc",
                               True))
        cols.append(Column(f"{attack}_worst", title, "Worst", f"{title} worst", "acc", True))
    fair = "AA fairness"
    cols.append(Column(f"{RHO_ATTACK}_std", fair, "Std", "AA class std", "spread", False))
    if n_classes >= MANY_CLASSES:
        cols.append(Column(f"{RHO_ATTACK}_worst10", fair, "W10", "AA worst-10%", "acc", True))
    if has_baseline:
        cols.append(Column("rho", fair, "rho", f"rho vs {BASELINE}", "rho", True, False))
    cols += [
        Column("train_seconds", "Train time", "own", "Time own", "seconds", False, False),
        Column("train_seconds_with_warm_start", "Train time", "+warm", "Time +warm", "seconds",
               False, False),
        Column("train_passes", "Passes", "own", "Passes own", "passes", False, False),
        Column("train_passes_with_warm_start", "Passes", "+warm", "Passes +warm", "passes",
               False, False),
    ]
    return cols


def time_unit(seconds: list[float]) -> tuple[str, float]:
    """A unit that keeps the largest time readable: (name, seconds per unit)."""
    top = max((s for s in seconds if not math.isnan(s)), default=0.0)
    if top >= 2 * 3600:
        return "h", 3600.0
    if top >= 2 * 60:
        return "min", 60.0
    return "s", 1.0


def _short(v: float) -> str:
    """About three significant digits, no exponent."""
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def si(v: float) -> str:
    """Counts with k / M / G / T suffixes: 2160 -> 2.16k."""
    for exp, suffix in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(v) >= 0.9995 * 10 ** exp:
            return f"{v / 10 ** exp:.3g}{suffix}"
    return f"{v:.0f}"


def formatter(kind: str, unit_seconds: float) -> Callable[[float], str]:
    """Text of a value of this kind (accuracies in percent with one decimal)."""
    return {
        "acc": lambda v: f"{100 * v:.1f}",
        "spread": lambda v: f"{100 * v:.1f}",
        "rho": lambda v: f"{v:.2f}",
        "seconds": lambda v: _short(v / unit_seconds),
        "passes": si,
    }[kind]


def _rank_value(text: str, kind: str) -> float:
    """The displayed number back as a float, so ties after rounding are bold together."""
    if kind == "passes":
        scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
        return float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)
    return float(text)


MEASURED_KINDS = ("seconds", "passes")  # cost columns: the plain best is bold


def _column_cells(frame: pd.DataFrame, col: Column, unit_seconds: float) -> list[Cell]:
    fmt = formatter(col.kind, unit_seconds)
    texts = []
    for _, row in frame.iterrows():
        mean = row.get(col.key, math.nan)
        std = row.get(f"{col.key}_std", math.nan)
        if mean is None or math.isnan(mean):
            texts.append((None, None))
            continue
        show = col.show_std and std is not None and not math.isnan(std)
        texts.append((fmt(mean), fmt(std) if show else None))
    if col.kind not in MEASURED_KINDS:
        # accuracy-derived: bold only a best separated from the runner-up (intervals.py)
        flags = frame.get(f"{col.key}_separated")
        marks = [bool(f) for f in flags] if flags is not None else [False] * len(texts)
        return [Cell(m, s, m is not None and b) for (m, s), b in zip(texts, marks, strict=True)]
    competing = frame["ranked"].tolist() if "ranked" in frame else [True] * len(texts)
    ranked = [_rank_value(m, col.kind) for (m, _), c in zip(texts, competing, strict=True)
              if m is not None and c]
    # cost: bold only when it tells something: two values or more, not all tied
    informative = len(ranked) >= 2 and len(set(ranked)) > 1
    best = (max(ranked) if col.higher_better else min(ranked)) if informative else None
    return [Cell(m, s, m is not None and c and best is not None
                 and _rank_value(m, col.kind) == best)
            for (m, s), c in zip(texts, competing, strict=True)]


def display_names(methods: list[str]) -> dict[str, str]:
    """Each method's display name (its class's `title`); the code name for anything not
    registered (a `fairbench eval` label, a method file since removed)."""
    from benchmark.catalog import method_registry
    from benchmark.common.errors import UserError

    try:
        registry = method_registry()
    except UserError:  # a broken method file must not stop a report of finished runs
        return {m: m for m in methods}
    out = {}
    for label in methods:
        name = label_method(label)  # a variant keeps its settings: TRADES[beta=3]
        out[label] = (registry.get(name).title if name in registry else name) + label[len(name):]
    return out


def _subset(table: Table, wanted: Callable[[Column], bool]) -> Table:
    idx = [i for i, c in enumerate(table.columns) if wanted(c)]
    panels = [replace(p, cells=[[row[i] for i in idx] for row in p.cells])
              for p in table.panels]
    return Table([table.columns[i] for i in idx], panels, table.time_unit)


def split_table(table: Table) -> tuple[Table, Table]:
    """(accuracy table, cost table): the same panels with the columns split by kind, so each
    fits the text width of a one-column article."""
    return (_subset(table, lambda c: c.kind not in MEASURED_KINDS),
            _subset(table, lambda c: c.kind in MEASURED_KINDS))


def panel_title(checkpoint: str, view: str) -> str:
    """The panel's title: the checkpoint's, then the view's when the table has two views."""
    return f"{PANEL_TITLES[checkpoint]}: {VIEW_TITLES[view]}" if view else PANEL_TITLES[checkpoint]


def build_table(summary: pd.DataFrame, coll: Collection) -> Table:
    """Format the summary frame into panels (best, last; each per view when the comparison was
    tuned), best values per column in bold, ranked within the panel."""
    has_base = bool((summary.loc[summary["method"] == BASELINE, "seeds"] > 0).any())
    cols = columns_for(len(coll.classes), has_base,
                       unbalanced=not bool(coll.metrics["balanced"].all()),
                       titles=attack_titles(coll.records))
    unit, per = time_unit([float(v) for c in cols if c.kind == "seconds"
                           for v in summary[c.key].tolist()])
    views = coll.views or {"": None}
    panels = []
    for ckpt in CHECKPOINTS:
        for view, labels in views.items():
            frame = summary[summary["checkpoint"] == ckpt]
            if labels is not None:  # rank again within the view's rows only
                frame = mark_separated(frame[frame["method"].isin(labels)], coll.per_class,
                                       ATTACKS)
            frame = frame.reset_index(drop=True)
            by_col = [_column_cells(frame, c, per) for c in cols]
            rows = [[cells[i] for cells in by_col] for i in range(len(frame))]
            seeds = []
            for method, n in zip(frame["method"], frame["seeds"], strict=True):
                total = len(coll.expected.get(method, []))
                seeds.append(str(n) if n == total else f"{n}/{total}")
            methods = frame["method"].tolist()
            # a tuned panel holds one row per method, so its method's name says which: the
            # configuration is in the side-by-side table and the tuning appendix
            shown = [label_method(m) if view == "tuned" else m for m in methods]
            names = display_names(shown)
            panels.append(Panel(ckpt, panel_title(ckpt, view), methods, seeds, rows,
                                [names[m] for m in shown], view))
    return Table(cols, panels, unit)
