"""Published robust accuracies (quoted from papers and official repositories, not reproduced),
shown beside fairbench's own numbers when the dataset matches.

The data file is `benchmark/report/data/published.csv` (one row per quoted number: dataset,
method as named here (empty when the variant is not stated), label, robust_avg, robust_worst
in %, attack, model, epochs, checkpoint rule, source).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA = Path(__file__).with_name("data") / "published.csv"
COLUMNS = ["dataset", "method", "label", "robust_avg", "robust_worst", "attack", "model",
           "epochs", "checkpoint", "source"]


def load_published(path: Path = DATA) -> pd.DataFrame:
    """Every quoted number (strings kept as written, accuracies as floats)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    for col in ("robust_avg", "robust_worst"):
        frame[col] = frame[col].astype(float)
    return frame[COLUMNS]


def published_beside(summary: pd.DataFrame, dataset: str, checkpoint: str = "best",
                     path: Path = DATA) -> pd.DataFrame:
    """The quoted rows of `dataset`, each with fairbench's AutoAttack average / worst class (%,
    mean over seeds, `checkpoint`) of the same method when it was run (NaN otherwise)."""
    quoted = load_published(path)
    quoted = quoted[quoted["dataset"] == dataset].reset_index(drop=True)
    ours = summary[summary["checkpoint"] == checkpoint].set_index("method")
    for stat in ("avg", "worst"):
        quoted[f"fairbench_{stat}"] = [
            100 * ours.loc[m, f"autoattack_{stat}"] if m in ours.index else float("nan")
            for m in quoted["method"]]
    return quoted


def num(value: float) -> str:
    """An accuracy in % with one decimal, a dash when absent."""
    return "—" if pd.isna(value) else f"{value:.1f}"


def published_markdown(frame: pd.DataFrame, esc) -> str:
    """A Markdown section: quoted numbers beside ours, labelled as quoted."""
    if frame.empty:
        return ""

    lines = ["", "**Published numbers (quoted from their sources, not reproduced here; other "
             "models, schedules, attacks and checkpoint rules than ours).** fairbench: this "
             "report's AutoAttack numbers of the same method (best checkpoint, mean over seeds).",
             "", "| Published as | Method here | Quoted avg | Quoted worst | fairbench avg | "
             "fairbench worst | Attack | Model | Epochs | Checkpoint | Source |",
             "| :--- | :--- | ---: | ---: | ---: | ---: | :--- | :--- | :--- | :--- | :--- |"]
    for r in frame.itertuples():
        lines.append(f"| {esc(r.label)} | {esc(r.method) or '—'} | {num(r.robust_avg)} | "
                     f"{num(r.robust_worst)} | {num(r.fairbench_avg)} | {num(r.fairbench_worst)} "
                     f"| {esc(r.attack)} | {esc(r.model)} | {esc(r.epochs)} | "
                     f"{esc(r.checkpoint)} | {esc(r.source)} |")
    return "\n".join(lines) + "\n"
