"""The tuning appendix: every configuration `fairbench tune` tried, with its validation numbers
(at its run's best checkpoint) and the criterion, as CSV, Markdown and LaTeX, a figure of the
criterion against the learning-rate factor per method, and the sentence the tables carry (budget,
criterion, each method's selected configuration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_text, read_json, read_jsonl
from benchmark.core.run_paths import RunPaths
from benchmark.core.search_space import LR_FACTOR_KEY
from benchmark.report.figure_style import method_colors, new_figure, shown, styled
from benchmark.report.plots import save_figure
from benchmark.report.render import latex_escape, md_escape
from benchmark.tuning.selection import CRITERIA, evidence, selected_line
from benchmark.tuning.tune_file import TuneFile

COLUMNS = ["method", "index", "label", "settings", "lr_factor", "status", "best_epoch",
           "val_clean_avg", "val_robust_avg", "val_robust_worst", "criterion", "candidate",
           "selected", "retrained"]


def settings_text(settings: dict) -> str:
    """`lr x0.53, beta=3.1` (the learning-rate factor first)."""
    parts = [f"lr x{settings[LR_FACTOR_KEY]:g}"] if LR_FACTOR_KEY in settings else []
    return ", ".join(parts + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in settings.items() if k != LR_FACTOR_KEY])


def run_status(paths: RunPaths) -> str:
    """"finished", "diverged" (a non-finite loss or weights: never selected), "failed" (any
    other failure) or "not finished"."""
    if paths.done.exists():
        return "finished"
    if paths.failed.exists():
        try:
            failed = read_json(paths.failed)
        except UserError:  # damaged: still a failure
            return "failed"
        return "diverged" if isinstance(failed, dict) and failed.get("kind") == "non-finite" \
            else "failed"
    return "not finished"


def tuning_frame(results: Path, dataset: str, preset: str, tune: TuneFile) -> pd.DataFrame:
    """One row per tried configuration with its status (validation numbers in %; NaN unless
    it finished: a run that diverged keeps no numbers, however good its first epochs were).
    The criterion is the one the method's last search selected by; `candidate` marks that
    search's configurations (its budget's first ones), as opposed to ones an earlier search
    tried (a larger budget, another base).

    A decided search shows the validation lines its selection read (tune.json), whatever
    happened to its runs since; `retrained` marks a run whose history no longer holds them (it
    was trained again after the decision, e.g. the selected seed-0 run on another machine)."""
    rows = []
    for method, search in tune.methods.items():
        criterion = CRITERIA[tune.criterion_of(method)]
        candidates = {c.label for c in search.configs[:tune.budget_of(method)]}
        for config in search.configs:
            paths = RunPaths.of(results, dataset, preset, config.label, search.seed)
            status = run_status(paths)
            now = selected_line(read_jsonl(paths.log)) if status == "finished" else None
            line, retrained = now or {}, False
            if config.evidence is not None:
                line, status = config.evidence, "finished"
                retrained = evidence(now) != config.evidence
            val = line.get("val") or {}
            crit = criterion(val) if val else np.nan
            rows.append({"method": method, "index": config.index, "label": config.label,
                         "settings": settings_text(config.settings),
                         "lr_factor": config.settings.get(LR_FACTOR_KEY), "status": status,
                         "best_epoch": line.get("epoch"),
                         **{f"val_{k}": 100 * val[k] if k in val else np.nan
                            for k in ("clean_avg", "robust_avg", "robust_worst")},
                         "criterion": 100 * crit, "candidate": config.label in candidates,
                         "selected": config.label == search.selected,
                         "retrained": retrained})
    return pd.DataFrame(rows, columns=COLUMNS)


def caption(tune: TuneFile) -> str:
    """Budget, criterion and each method's selected configuration, and what the comparison of
    the two views can and cannot say, in two sentences."""
    budgets = sorted({tune.budget_of(m) for m in tune.methods})
    criteria = sorted({tune.criterion_of(m) for m in tune.methods})
    seeds = sorted({s.seed for s in tune.methods.values()})
    chosen = "; ".join(f"{m}: {s.selected or 'none yet'}" for m, s in tune.methods.items())
    return (f"Equal-budget tuning: {' / '.join(map(str, budgets))} configurations per method "
            f"(the learning-rate factor and the method's own knobs) on seed "
            f"{', '.join(map(str, seeds))}, selected on validation by {', '.join(criteria)}; "
            f"the test set was read only for the selected and the protocol-default runs "
            f"({chosen}). Seed {seeds[0]} chose the configurations, so a tuned row's number on "
            f"it is optimistic; rho and the paired test compare every row, tuned or not, with "
            f"the protocol-default PGD-AT.")


def retrained_note(frame: pd.DataFrame) -> str:
    """The sentence naming runs trained again after their search was decided ('' if none)."""
    labels = list(frame.loc[frame["retrained"], "label"])
    return (f" Trained again after the search was decided, so its history differs from what "
            f"the selection read (shown here): {', '.join(labels)}." if labels else "")


def _pct(value: float) -> str:
    """One decimal; empty for a run without numbers."""
    return "" if pd.isna(value) else f"{value:.1f}"


def _markdown(frame: pd.DataFrame, text: str) -> str:
    head = ["Method", "#", "Run", "Settings", "Status", "Best epoch", "Val clean avg",
            "Val robust avg", "Val robust worst", "Criterion", "Selected"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in frame.itertuples():
        epoch = "" if r.best_epoch is None or pd.isna(r.best_epoch) else str(int(r.best_epoch))
        cells = [shown(r.method), str(r.index), r.label, r.settings, r.status, epoch,
                 *(_pct(v) for v in (r.val_clean_avg, r.val_robust_avg,
                                     r.val_robust_worst, r.criterion)),
                 "yes" if r.selected else ""]
        lines.append("| " + " | ".join(md_escape(c) for c in cells) + " |")
    return md_escape(text) + "\n\n" + "\n".join(lines) + "\n"


_APPENDIX_PREAMBLE = ("% fairbench tuning appendix; needs \\usepackage{booktabs,longtable} in "
                      "the preamble\n")
_LATEX_HEAD = (r"Method & \# & Settings & Status & Val avg & Val worst & Criterion & Sel. \\")


def _latex(frame: pd.DataFrame, text: str) -> str:
    """A longtable (every configuration of every method is more than a page), the settings
    wrapped in a narrow column, so it fits a one-column article."""
    rows = [" & ".join([latex_escape(shown(r.method)), str(r.index),
                        r"\raggedright " + latex_escape(r.settings),
                        "" if r.status == "finished" else r.status,
                        *(_pct(v) for v in (r.val_robust_avg, r.val_robust_worst,
                                            r.criterion)),
                        "yes" if r.selected else ""]) + r" \\"
            for r in frame.itertuples()]
    return _APPENDIX_PREAMBLE + "\n".join([
        r"{\scriptsize\setlength{\tabcolsep}{3pt}",
        r"\begin{longtable}{lrp{0.28\linewidth}lrrrc}",
        # ragged: the caption's run labels are long words that cannot be hyphenated
        rf"\caption[Equal-budget tuning]{{\raggedright {latex_escape(text)}}}"
        r"\label{tab:fairbench-tuning} \\",
        r"\toprule", _LATEX_HEAD, r"\midrule", r"\endfirsthead",
        r"\toprule", _LATEX_HEAD, r"\midrule", r"\endhead",
        r"\bottomrule", r"\endfoot",
        *rows,
        r"\end{longtable}}"]) + "\n"


@styled
def tuning_figure(frame: pd.DataFrame, criterion: str):  # noqa: ANN201 - Figure
    """The validation criterion against the learning-rate factor, one series per method, the
    selected configuration circled."""
    fig = new_figure(6.5, 3.6)
    ax = fig.subplots()
    colors = method_colors(list(frame["method"].unique()))
    for method, rows in frame.groupby("method", sort=False):
        rows = rows.sort_values("lr_factor")
        ax.plot(rows["lr_factor"], rows["criterion"], marker="o", color=colors[method],
                label=shown(method))
        chosen = rows[rows["selected"]]
        ax.scatter(chosen["lr_factor"], chosen["criterion"], s=140, facecolors="none",
                   edgecolors="black", zorder=3)
    ax.set_xscale("log")
    # ticks at 1-2-5 values written plainly (0.2, 0.5, 1, 2); minor ticks unlabelled
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("learning-rate factor (lr x f, weight decay / f)")
    ax.set_ylabel(f"validation {criterion} (%)")
    ax.set_title("Tuning: every configuration tried (circled: selected)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def write_tuning(frame: pd.DataFrame, tune: TuneFile, out: Path) -> dict[str, Path]:
    """The appendix files of a tuned results directory (`frame`: its `tuning_frame`)."""
    text = caption(tune) + retrained_note(frame)
    written = {"tune_csv": out / "tune.csv", "tune_md": out / "tune.md",
               "tune_tex": out / "tune.tex"}
    atomic_write_text(written["tune_csv"], frame.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(written["tune_md"], _markdown(frame, text))
    atomic_write_text(written["tune_tex"], _latex(frame, text))
    written.update(save_figure(tuning_figure(frame, tune.criterion), out, "tune_lr"))
    return written
