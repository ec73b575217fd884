"""The two views side by side (`views.csv`/`views.md`/`views.tex`, written when the results were
tuned): per searched method, its protocol-default and its tuned AutoAttack numbers (best
checkpoint, mean ± std over seeds), its rank in each view, and how decisive its selection was.

A view's rank orders the methods by the tuning criterion applied to the test AutoAttack means
(for the default `robust_avg_worst`, the mean of the average and the worst class): the same
trade-off the search optimised on validation, read on the test set, so a reader sees whether
tuning changes the ordering. The validation margin is the selected configuration's criterion
minus the best other finished configuration's (points): a margin inside the validation noise
means the selection among near-equal configurations was close to a coin toss."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.common.fileio import atomic_write_text
from benchmark.report.expected import order_methods
from benchmark.report.figure_style import shown
from benchmark.report.published import num
from benchmark.report.render import latex_escape, md_escape
from benchmark.report.tuning import settings_text
from benchmark.tuning.selection import CRITERIA
from benchmark.tuning.tune_file import TuneFile

VIEWS = ("defaults", "tuned")
STATS = ("avg", "worst")


def _view_numbers(best: pd.DataFrame, label: str | None, criterion: str) -> dict[str, float]:
    """A label's AutoAttack mean and std per statistic, its seed count and its criterion score
    on those means (NaN for a label without a finished seed)."""
    row = best.loc[label] if label is not None and label in best.index else None
    out: dict[str, float] = {"seeds": float(row["seeds"]) if row is not None else 0.0}
    for stat in STATS:
        for suffix in ("", "_std"):
            key = f"autoattack_{stat}{suffix}"
            out[f"aa_{stat}{suffix}"] = 100 * float(row[key]) if row is not None else float("nan")
    finished = out["seeds"] > 0
    out["score"] = 100 * CRITERIA[criterion](
        {"robust_avg": out["aa_avg"] / 100, "robust_worst": out["aa_worst"] / 100}) \
        if finished else float("nan")
    return out


def _margin(tuning: pd.DataFrame, method: str) -> float:
    """The selected configuration's validation criterion minus the best other finished one's."""
    rows = tuning[(tuning["method"] == method) & tuning["criterion"].notna()]
    chosen, others = rows[rows["selected"]], rows[~rows["selected"]]
    if chosen.empty or others.empty:
        return float("nan")
    return float(chosen["criterion"].iloc[0] - others["criterion"].max())


def views_frame(summary: pd.DataFrame, tune: TuneFile, tuning: pd.DataFrame) -> pd.DataFrame:
    """One row per searched method: both views' numbers and ranks, and the selection margin."""
    best = summary[summary["checkpoint"] == "best"].set_index("method")
    rows = []
    for method in order_methods(tune.methods):
        search = tune.methods[method]
        config = next((c for c in search.configs if c.label == search.selected), None)
        row: dict[str, object] = {
            "method": method, "tuned_label": search.selected,
            "tuned_settings": settings_text(config.settings) if config else "",
            "val_margin": _margin(tuning, method)}
        for view, label in zip(VIEWS, (method, search.selected), strict=True):
            row.update({f"{view}_{k}": v
                        for k, v in _view_numbers(best, label, tune.criterion).items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    for view in VIEWS:
        frame[f"{view}_rank"] = frame[f"{view}_score"].rank(ascending=False, method="min")
    return frame


def _cell(row: pd.Series, view: str, stat: str, pm: str) -> str:
    mean, std = row[f"{view}_aa_{stat}"], row[f"{view}_aa_{stat}_std"]
    return num(mean) if pd.isna(std) else f"{num(mean)} {pm} {std:.1f}"


def _rank(value: float) -> str:
    return "—" if pd.isna(value) else str(int(value))


def _cells(row: pd.Series, pm: str, esc) -> list[str]:  # noqa: ANN001 - an escape function
    settings = "default" if row["tuned_label"] == row["method"] else row["tuned_settings"]
    return [esc(shown(row["method"])),
            *(_cell(row, "defaults", s, pm) for s in STATS), _rank(row["defaults_rank"]),
            str(int(row["defaults_seeds"])), esc(settings or "not decided"),
            *(_cell(row, "tuned", s, pm) for s in STATS), _rank(row["tuned_rank"]),
            str(int(row["tuned_seeds"])),
            "—" if pd.isna(row["val_margin"]) else f"{row['val_margin']:.1f}"]


def views_caption(tune: TuneFile, pm: str, esc) -> str:  # noqa: ANN001 - an escape function
    """What the side-by-side table shows, escaped by `esc` around the symbol `pm`."""
    return esc("Both views side by side: AutoAttack accuracy (%) of the best-on-validation "
               "checkpoint, mean") + f" {pm} " + esc(
            f"std over the n finished seeds. Rank: the methods ordered by "
            f"the tuning criterion ({tune.criterion}) applied to the test AutoAttack means, "
            f"within each view. Val margin: the selected configuration's validation criterion "
            f"minus the best other finished configuration's (points); a margin inside the "
            f"validation noise makes the selection close to a coin toss.")


HEAD = ["Method", "Defaults: AA avg", "AA worst", "Rank", "n", "Tuned: configuration",
        "AA avg", "AA worst", "Rank", "n", "Val margin"]


def views_markdown(frame: pd.DataFrame, tune: TuneFile) -> str:
    lines = ["| " + " | ".join(HEAD) + " |",
             "| :--- | ---: | ---: | ---: | ---: | :--- | ---: | ---: | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(_cells(row, "±", md_escape)) + " |" for _, row in frame.iterrows()]
    return views_caption(tune, "±", md_escape) + "\n\n" + "\n".join(lines) + "\n"


def views_latex(frame: pd.DataFrame, tune: TuneFile) -> str:
    head = " & ".join(latex_escape(h) for h in HEAD) + r" \\"
    pm = r"$\pm$"
    rows = [" & ".join(_cells(row, pm, latex_escape)) + r" \\" for _, row in frame.iterrows()]
    text = views_caption(tune, pm, latex_escape)
    return "\n".join([r"\begin{table}[t]\centering\small", r"\begin{tabular}{lrrrrlrrrrr}",
                      r"\toprule", head, r"\midrule", *rows, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{{text}}}", r"\end{table}"]) + "\n"


def views_html(frame: pd.DataFrame, tune: TuneFile, esc) -> str:  # noqa: ANN001 - escape
    """The page's section: the same table and caption, cells escaped by `esc`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEAD)
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in _cells(row, "±", esc)) + "</tr>"
                   for _, row in frame.iterrows())
    return (f'<h2>Both views side by side</h2><p class="note">{views_caption(tune, "±", esc)}'
            f"</p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def write_views(frame: pd.DataFrame, tune: TuneFile, out: Path) -> dict[str, Path]:
    """views.csv, views.md and views.tex of a `views_frame`."""
    written = {"views_csv": out / "views.csv", "views_md": out / "views.md",
               "views_tex": out / "views.tex"}
    atomic_write_text(written["views_csv"], frame.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(written["views_md"], views_markdown(frame, tune))
    atomic_write_text(written["views_tex"], views_latex(frame, tune))
    return written
