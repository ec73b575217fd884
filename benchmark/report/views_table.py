"""The two views side by side (`views.csv`/`views.md`/`views.tex` and a section of the page,
written when the results were tuned): per searched method, its protocol-default and its tuned
AutoAttack numbers (best checkpoint, mean ± std over seeds), its rank in each view, and how
decisive its selection was.

A view's rank orders the methods by the tuning criterion applied to the test AutoAttack means
(for the default `robust_avg_worst`, the mean of the average and the worst class): the trade-off
the search optimised on validation, read on the test set, so one table shows whether tuning
changes the ordering. Only methods with numbers in both views are ranked, so a run missing from
one view never shifts the other's ranks. The validation margin is the selected configuration's
criterion minus the best other configuration of the same search: a margin inside the validation
noise means the search picked among configurations it could not tell apart."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from benchmark.common.fileio import atomic_write_text
from benchmark.report.expected import order_methods
from benchmark.report.figure_style import shown
from benchmark.report.render import (
    LONGTABLE_PREAMBLE,
    latex_escape,
    latex_rows,
    md_cell,
    md_escape,
)
from benchmark.report.table_model import Cell
from benchmark.report.views import VIEW_TITLES
from benchmark.tuning.selection import CRITERIA
from benchmark.tuning.tune_file import TuneFile

VIEWS = tuple(VIEW_TITLES)  # defaults, tuned
STATS = ("avg", "worst")
Escape = Callable[[str], str]


def _view_numbers(best: pd.DataFrame, label: str | None, expected: Sequence[int],
                  criterion: str) -> dict[str, float]:
    """A label's AutoAttack means and stds (%), its finished and expected seed counts, and the
    criterion on its means (NaN without a finished seed)."""
    row = best.loc[label] if label is not None and label in best.index else None
    out = {"seeds": float(row["seeds"]) if row is not None else 0.0,
           "expected": float(len(expected))}
    for stat in STATS:
        for suffix in ("", "_std"):
            value = row[f"autoattack_{stat}{suffix}"] if row is not None else float("nan")
            out[f"aa_{stat}{suffix}"] = 100 * float(value)
    out["test_criterion"] = 100 * CRITERIA[criterion](
        {"robust_avg": out["aa_avg"] / 100, "robust_worst": out["aa_worst"] / 100})
    return out


def _margin(rows: pd.DataFrame) -> float:
    """The selected candidate's validation criterion minus the best other finished one's."""
    rows = rows[rows["candidate"] & rows["criterion"].notna()]
    chosen, others = rows[rows["selected"]], rows[~rows["selected"]]
    if chosen.empty or others.empty:
        return float("nan")
    return float(chosen["criterion"].iloc[0] - others["criterion"].max())


def views_frame(summary: pd.DataFrame, tune: TuneFile, tuning: pd.DataFrame,
                expected: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """One row per searched method: both views' numbers and ranks, and the selection margin.
    `tuning` is the appendix's `tuning_frame`; `expected` maps a label to its expected seeds."""
    best = summary[summary["checkpoint"] == "best"].set_index("method")
    rows = []
    for method in order_methods(tune.methods):
        search = tune.methods[method]
        criterion = tune.criterion_of(method)
        configs = tuning[tuning["method"] == method]
        chosen = configs[configs["selected"]]
        row: dict[str, object] = {
            "method": method, "base": search.base, "tuned_label": search.selected,
            "tuned_settings": chosen["settings"].iloc[0] if not chosen.empty else "",
            "criterion": criterion, "val_margin": _margin(configs)}
        for view, label in zip(VIEWS, (method, search.selected), strict=True):
            numbers = _view_numbers(best, label, expected.get(label or "", ()), criterion)
            row.update({f"{view}_{k}": v for k, v in numbers.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    both = frame[[f"{v}_test_criterion" for v in VIEWS]].notna().all(axis=1)
    for view in VIEWS:
        frame[f"{view}_rank"] = frame[f"{view}_test_criterion"].where(both).rank(
            ascending=False, method="min")
    return frame


def _configuration(row: pd.Series) -> str:
    if row["tuned_label"] is None or pd.isna(row["tuned_label"]):
        return "not decided"
    text = "default" if row["tuned_label"] == row["method"] else row["tuned_settings"]
    return f"{text} on {row['base']}" if isinstance(row["base"], str) else text


def _number(value: float, std: float = float("nan"), digits: int = 1) -> Cell:
    """A number's cell (no value: NaN), with its std when there is one."""
    if pd.isna(value):
        return Cell(None)
    return Cell(f"{value:.{digits}f}", None if pd.isna(std) else f"{std:.1f}")


def _cells(row: pd.Series, view: str) -> list[Cell]:
    """A view's columns: AutoAttack average and worst class, rank, finished/expected seeds."""
    seeds = f"{int(row[f'{view}_seeds'])}/{int(row[f'{view}_expected'])}"
    return [*(_number(row[f"{view}_aa_{s}"], row[f"{view}_aa_{s}_std"]) for s in STATS),
            _number(row[f"{view}_rank"], digits=0), Cell(seeds)]


def _row(row: pd.Series, esc: Escape) -> list[Cell]:
    """A row's cells after the method's name; the configuration's text escaped by `esc`."""
    return [*_cells(row, "defaults"), Cell(esc(_configuration(row))), *_cells(row, "tuned"),
            _number(row["val_margin"])]


COLUMNS = ["AA avg", "AA worst", "rank", "n"]
HEAD = ["Method", *(f"Defaults {c}" for c in COLUMNS), "Tuned configuration",
        *(f"Tuned {c}" for c in COLUMNS), "Val margin"]


def views_caption(tune: TuneFile, pm: str, esc: Escape) -> str:
    """What the side-by-side table shows and cannot say, escaped by `esc` around `pm`."""
    return _views_head(pm, esc) + " " + _views_details(tune, esc)


def _views_head(pm: str, esc: Escape) -> str:
    return esc("Both views side by side: AutoAttack accuracy (%) of the best-on-validation "
               "checkpoint, mean") + f" {pm} " + esc(
        "std over the n finished of the expected seeds (worst: the mean over seeds of each "
        "seed's worst class).")


def _views_details(tune: TuneFile, esc: Escape) -> str:
    criteria = sorted({tune.criterion_of(m) for m in tune.methods})
    return esc(
        f"Rank: within each view, the methods with numbers in both views "
        f"ordered by the tuning criterion ({', '.join(criteria)}) applied to the test "
        f"AutoAttack means; ranks ignore seed noise (the intervals and the paired test are in "
        f"table.md). The tuned view includes the search seed, whose run was selected on "
        f"validation, so its numbers are optimistic. Val margin: the selected configuration's "
        f"validation criterion minus the best other configuration of the same search, in "
        f"points; one class's accuracy on m validation points has a binomial standard error of "
        f"up to 50/sqrt(m) points, so a margin of a point or two picks among configurations "
        f"the search could not tell apart.")


def views_markdown(frame: pd.DataFrame, tune: TuneFile) -> str:
    lines = ["| " + " | ".join(HEAD) + " |",
             "| :--- |" + " ---: |" * 4 + " :--- |" + " ---: |" * 5]
    for _, row in frame.iterrows():
        cells = [md_escape(shown(row["method"])), *map(md_cell, _row(row, md_escape))]
        lines.append("| " + " | ".join(cells) + " |")
    return views_caption(tune, "±", md_escape) + "\n\n" + "\n".join(lines) + "\n"


def views_latex(frame: pd.DataFrame, tune: TuneFile) -> str:
    """A booktabs `longtable` for a one-column article: 17 methods with wrapped configurations
    and their stds (on a second, smaller line, never parted from the means by a page break)
    take more than a page, so it breaks across pages with its header repeated; the caption's
    details follow the table, smaller."""
    body = []
    for _, row in frame.iterrows():
        lines = latex_rows([latex_escape(shown(row["method"]))], _row(row, latex_escape))
        body += [lines[0] + "*", *lines[1:]] if len(lines) > 1 else lines  # \\*: no break
    view = ["Avg", "Worst", "Rank", "$n$"]  # narrow: the group header says AutoAttack
    labels = ["Method", *view, "Configuration", *view, "Margin"]
    head = [r" & \multicolumn{4}{c}{Defaults: AutoAttack} & \multicolumn{5}{c}{Tuned (equal "
            r"budget): AutoAttack} & Val \\", r"\cmidrule(lr){2-5} \cmidrule(lr){6-10}",
            " & ".join(latex_escape(c) if "$" not in c else c for c in labels) + r" \\"]
    caption = _views_head(r"$\pm$", latex_escape)
    details = rf"\parbox{{\linewidth}}{{\footnotesize {_views_details(tune, latex_escape)}}}"
    return "\n".join([
        LONGTABLE_PREAMBLE.rstrip("\n"), r"{\scriptsize\setlength{\tabcolsep}{2.5pt}",
        r"\begin{longtable}{lrrrrp{2.4cm}rrrrr}",
        rf"\caption[Both views side by side]{{{caption}}}\label{{tab:fairbench-views}} \\",
        r"\toprule", *head, r"\midrule", r"\endfirsthead",
        r"\toprule", *head, r"\midrule", r"\endhead",
        r"\bottomrule", r"\endfoot",
        *body, r"\end{longtable}}", r"\noindent" + details]) + "\n"


def views_html(frame: pd.DataFrame, tune: TuneFile, esc: Escape) -> str:
    """The page's section: the same table and caption, text escaped by `esc` (a cell's text is
    the Markdown one: no cell of this table is bold)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEAD)
    rows = "".join(f"<tr><td>{esc(shown(row['method']))}</td>"
                   + "".join(f"<td>{md_cell(c)}</td>" for c in _row(row, esc)) + "</tr>"
                   for _, row in frame.iterrows())
    return (f'<h2>Both views side by side</h2><p class="note">{views_caption(tune, "±", esc)}'
            f'</p><div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}'
            f"</tbody></table></div>")


def write_views(frame: pd.DataFrame, tune: TuneFile, out: Path) -> dict[str, Path]:
    """views.csv, views.md and views.tex of a `views_frame`."""
    written = {"views_csv": out / "views.csv", "views_md": out / "views.md",
               "views_tex": out / "views.tex"}
    atomic_write_text(written["views_csv"], frame.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(written["views_md"], views_markdown(frame, tune))
    atomic_write_text(written["views_tex"], views_latex(frame, tune))
    return written
