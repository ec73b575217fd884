"""build_report: records of one dataset/preset -> tables (LaTeX, Markdown, CSV) and plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_text
from benchmark.report.aggregate import summary_frame
from benchmark.report.captions import facts, paired_text
from benchmark.report.collect import ATTACKS, Collection, collect
from benchmark.report.expected import BASELINE
from benchmark.report.html import render_html
from benchmark.report.intervals import add_intervals, add_paired_tests
from benchmark.report.masking import masking_frame, masking_text
from benchmark.report.plots import write_plots
from benchmark.report.power import detectable_text
from benchmark.report.published import published_beside, published_markdown
from benchmark.report.render import (
    md_escape,
    render_latex,
    render_markdown,
    render_standalone,
    table_frame,
)
from benchmark.report.table_model import build_table, split_table
from benchmark.report.tidy import tidy
from benchmark.report.tuning import caption, tuning_frame, write_tuning
from benchmark.report.views_table import views_frame, write_views

FORMATS = ("latex", "md", "csv", "html")


def markdown_notes(summary: pd.DataFrame, pgd_steps: str, tune: Any) -> str:
    """The sentences under the Markdown table: the paired test, the smallest detectable
    difference, the gradient-masking flag and, for a tuned comparison, the tuning caption."""
    notes = [paired_text(summary), detectable_text(summary), masking_text(summary, pgd_steps),
             f"{caption(tune)} Every configuration: tune.md." if tune else ""]
    return "".join(f"\n{md_escape(n)}\n" for n in notes if n)


def summarize(coll: Collection) -> pd.DataFrame:
    """One row per checkpoint x method: seed means and stds, intervals, bold flags (teachers
    never compete: `ranked`; a tuned comparison's table ranks again within each view) and the
    paired test against the baseline."""
    summary = summary_frame(coll.metrics, coll.methods)
    summary["ranked"] = ~summary["method"].isin(coll.unranked)
    summary = add_intervals(summary, coll.per_class, ATTACKS)
    return add_paired_tests(summary, coll.records, BASELINE)


def tuned_outputs(results: Path, coll: Collection, summary: pd.DataFrame,
                  out: Path) -> tuple[dict[str, Path], pd.DataFrame | None]:
    """The tuning appendix and both views side by side (and their frame, for the page), when
    `fairbench tune` made the runs; nothing otherwise."""
    if coll.tune is None or not coll.tune.methods:
        return {}, None
    tuning = tuning_frame(results, coll.dataset, coll.preset, coll.tune)
    views = views_frame(summary, coll.tune, tuning, coll.expected)
    return {**write_tuning(tuning, coll.tune, out), **write_views(views, coll.tune, out)}, views


def build_report(results: Path, dataset: str, preset: str, out: Path | None = None,
                 formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write the report into `out` (default results/<dataset>/<preset>/report/); returns what
    was written by kind. `formats` picks the tables; plots are always written."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown report format(s) {bad}; use {', '.join(FORMATS)}")
    coll = collect(Path(results), dataset, preset)
    out = Path(out) if out is not None else Path(results) / dataset / preset / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(coll)
    table = build_table(summary, coll)
    info = facts(coll, table)
    written: dict[str, Path] = {}
    if "latex" in formats:  # accuracy and cost as two tables: each fits \textwidth
        accuracy, cost = split_table(table)
        written["table_tex"] = out / "table.tex"
        atomic_write_text(written["table_tex"], render_latex(accuracy, info, coll))
        written["cost_tex"] = out / "cost.tex"
        atomic_write_text(written["cost_tex"], render_latex(cost, info, coll, "cost"))
        written["table_standalone_tex"] = out / "table_standalone.tex"
        atomic_write_text(written["table_standalone_tex"], render_standalone("table", "cost"))
    published = published_beside(summary, dataset)  # quoted numbers of this dataset, if any
    if "md" in formats:
        written["table_md"] = out / "table.md"
        atomic_write_text(written["table_md"], render_markdown(table, info, coll)
                          + markdown_notes(summary, info.pgd_steps, coll.tune)
                          + published_markdown(published, md_escape))
    if "csv" in formats:
        tidy_frames = tidy(coll)  # the API's frames: accuracy in % as in table.csv
        frames = {"table_csv": ("table.csv", table_frame(table, summary, coll)),
                  "per_class_csv": ("per_class.csv", tidy_frames.per_class),
                  "runs_csv": ("runs.csv", tidy_frames.runs)}
        if not published.empty:
            frames["published_csv"] = ("published.csv", published)
        if not (masked := masking_frame(summary)).empty:
            frames["masking_csv"] = ("masking.csv", masked)
        for key, (name, frame) in frames.items():
            written[key] = out / name
            atomic_write_text(written[key], frame.to_csv(index=False, float_format="%.6g"))
    written.update(write_plots(coll, summary, out))
    tuned, views = tuned_outputs(Path(results), coll, summary, out)
    written.update(tuned)
    if "html" in formats:  # after the plots: the page embeds them
        written["html"] = out / "index.html"
        atomic_write_text(written["html"], render_html(table, info, coll, out, Path(results),
                                                       published, summary, views))
    return written
