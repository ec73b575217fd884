"""What the tables and the page say around the numbers: the facts of a comparison (model,
threat model, attacks, points, seeds, warm starts) and the caption, note and paired-test
sentences built from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from benchmark.report.aggregate import DDOF, RHO_ATTACK
from benchmark.report.collect import Collection
from benchmark.report.expected import BASELINE
from benchmark.report.table_model import Table, display_names
from benchmark.report.views import without_tuned_row
from benchmark.runs.schema import RunRecord


def _one(values: set, fmt: Callable = str) -> str:
    """A single setting, or every value seen (with a warning) when runs disagree."""
    shown = sorted({"unknown" if v is None else fmt(v) for v in values})
    if len(shown) == 1:
        return shown[0]
    return " / ".join(shown) + " (runs differ)"


def fmt_eps(eps: float) -> str:
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:g}"


def _points(coll: Collection, attacks: tuple[str, ...]) -> str:
    """Points per class, per checkpoint when they differ ("200 (best), 50 (last)")."""
    pc = coll.per_class
    rows = pc.loc[pc["attack"].isin(attacks)].dropna(subset=["n"])
    if rows.empty:
        return "unknown"

    def span(n: pd.Series) -> str:
        lo, hi = int(n.min()), int(n.max())
        return str(lo) if lo == hi else f"{lo}-{hi}"

    by_checkpoint = {c: span(g["n"]) for c, g in rows.groupby("checkpoint", sort=False)}
    if len(set(by_checkpoint.values())) <= 1:
        return span(rows["n"])
    return ", ".join(f"{v} ({c})" for c, v in by_checkpoint.items())


@dataclass(frozen=True)
class Facts:
    """Settings the caption states (plain text; renderers escape and add symbols)."""

    dataset: str
    preset: str
    model: str
    eps: str
    pgd_steps: str
    cw_steps: str
    autoattack: str
    points: str        # clean / PGD / CW points per class
    aa_points: str     # AutoAttack points per class
    seeds: str         # expected seeds, e.g. "0, 1"
    n_seeds: int
    time_unit: str
    has_baseline: bool
    has_worst10: bool
    warm_starts: str = ""  # "ham from pgd_at epoch 4, 6 epochs at lr 0.01, 0.001; ..."
    teachers: str = ""     # "trades[teacher] (small_cnn_wide)": shown, never bold
    views: bool = False    # panels per view (views.py): protocol defaults and tuned
    untuned: str = ""      # methods with a defaults row and no tuned row


def facts(coll: Collection, table: Table) -> Facts:
    recs = coll.records
    unranked = coll.unranked
    settings = [r.eval_settings for r in recs]
    keys = {c.key for c in table.columns}
    all_seeds = sorted({s for seeds in coll.expected.values() for s in seeds})
    return Facts(
        dataset=coll.dataset, preset=coll.preset,
        model=_one({r.spec.model for r in recs if r.label not in unranked}
                   or {r.spec.model for r in recs}),  # a teacher's own model is named below
        eps=_one({s.get("eps", r.spec.protocol.get("eps")) for s, r in zip(settings, recs,
                                                                          strict=True)}, fmt_eps),
        pgd_steps=_one({s.get("pgd20", {}).get("steps") for s in settings}),
        cw_steps=_one({s.get("cw", {}).get("steps") for s in settings}),
        autoattack=_one({s.get("autoattack", {}).get("description", "AutoAttack")
                         for s in settings}),
        points=_points(coll, ("clean", "pgd20", "cw")), aa_points=_points(coll, ("autoattack",)),
        seeds=", ".join(map(str, all_seeds)), n_seeds=len(all_seeds), time_unit=table.time_unit,
        has_baseline="rho" in keys, has_worst10=f"{RHO_ATTACK}_worst10" in keys,
        warm_starts=warm_start_text(recs),
        teachers="; ".join(f"{label} ({_one({r.spec.model for r in recs if r.label == label})})"
                           for label in unranked),
        views=bool(coll.views),
        untuned=", ".join(without_tuned_row(coll.tune, list(coll.expected))),
    )


def warm_start_text(recs: list[RunRecord]) -> str:
    """Each warm-started method's base, begin epoch, own epochs and learning rates (from its
    first record; the seeds share them)."""
    parts: dict[str, str] = {}
    for r in recs:
        warm = r.spec.warm_start
        if not warm or r.label in parts:
            continue
        lrs = list(dict.fromkeys(f"{h['lr']:g}" for h in r.history if "lr" in h))
        parts[r.label] = (f"{r.label} from {warm['method']} epoch {warm['epoch']}, "
                          f"{r.train.get('epochs')} epochs at lr {', '.join(lrs) or '?'}")
    return "; ".join(parts[m] for m in sorted(parts))


def short_caption(f: Facts, sym: dict[str, str], esc: Callable[[str], str], what: str) -> str:
    """One sentence for a LaTeX \\caption; the details go in the note below the table."""
    if what == "cost":
        return (f"Training cost on {esc(f.dataset)} ({esc(f.preset)} preset): time and passes, "
                f"mean over seeds.")
    return (f"Test accuracy ({sym['pct']}) per method on {esc(f.dataset)} ({esc(f.preset)} "
            f"preset, {sym['eps']} = {esc(f.eps)}): mean over seeds, std below.")


def caption_sentences(f: Facts, sym: dict[str, str], esc: Callable[[str], str]) -> list[str]:
    """The caption's details, with symbols (pm, eps, rho, rho_def, pct) and escaping from the
    renderer (Markdown: the caption; LaTeX: the note below the table)."""
    pm, pct = sym["pm"], sym["pct"]
    out = [
        f"{esc(f.dataset)} ({esc(f.preset)} preset), model {esc(f.model)}, "
        f"{sym['eps']} = {esc(f.eps)}.",
        f"Test accuracy ({pct}): clean; PGD-{esc(f.pgd_steps)} (step size {sym['eps']}/4, "
        f"CE loss); CW-{esc(f.cw_steps)} (step size {sym['eps']}/4, margin loss); "
        f"{esc(f.autoattack)}.",
        f"Evaluation points per class: {esc(f.points)} (clean, PGD, CW), "
        f"{esc(f.aa_points)} (AutoAttack).",
        f"Mean {pm} std over seeds; n = number of finished seeds (expected {f.n_seeds}: "
        f"{esc(f.seeds)}); std with ddof={DDOF}, not shown for a single seed.",
        "Worst: mean over seeds of each seed's worst-class accuracy.",
        f"AA fairness: Std = std of AutoAttack accuracy across classes ({pct} points)"
        + (f"; W10 = mean of the worst 10{pct} of classes" if f.has_worst10 else "")
        + (f"; {sym['rho_def']} with A = avg, W = worst on AutoAttack, subscript 0 "
           f"for {esc(BASELINE)}, from seed means (a dash when a {esc(BASELINE)} value is 0)"
           if f.has_baseline else "") + ".",
        f"Train time ({esc(f.time_unit)}, training loop only) and passes (forward + backward "
        "through the model): mean over seeds, own and including the warm start.",
        f"Bold: in an accuracy column the best, only when the 95{pct} bootstrap interval (seeds "
        "and test points) of its difference to the runner-up excludes 0; the lowest time and "
        "passes" + (", each within its panel." if f.views else "."),
    ]
    if f.views:
        out.insert(-1, "Two views per checkpoint: protocol defaults (each method as the preset "
                       "configures it) and tuned (the configuration selected on validation, "
                       "the same search budget for every method; every configuration tried is "
                       "in the tuning appendix). A method whose defaults won its search is in "
                       "both; rows are ranked only within their panel"
                       + (f", and {esc(BASELINE)}'s defaults stay the reference of {sym['rho']}"
                          if f.has_baseline else "") + "."
                       + (f" No tuned row (search not decided, or not searched): "
                          f"{esc(f.untuned)}." if f.untuned else ""))
    if f.warm_starts:
        out.insert(-1, f"Warm starts (from the same seed's run of the base): "
                       f"{esc(f.warm_starts)}.")
    if f.teachers:
        out.append(f"Not ranked (never bold): {esc(f.teachers)}, the distillation methods' "
                   "teacher, a dependency on its own model, not a method under comparison.")
    return out


def missing_note(coll: Collection) -> str:
    """Plain-text line naming every missing or unfinished run (never silent)."""
    if not coll.missing:
        return f"All {len(coll.records)} expected runs finished."
    failed = [m for m in coll.missing if m.state in ("failed", "damaged")]
    other = [m for m in coll.missing if m not in failed]
    parts = []
    if failed:
        parts.append(f"Failed runs, no numbers shown ({len(failed)}): "
                     f"{'; '.join(m.describe() for m in failed)}.")
    if other:
        parts.append(f"Missing or unfinished runs ({len(other)}): "
                     f"{'; '.join(m.describe() for m in other)}.")
    return " ".join(parts)


def paired_text(summary: pd.DataFrame, checkpoint: str = "best") -> str:
    """One sentence naming, per method, the paired test against the baseline on AutoAttack
    (empty when no record holds per-point outcomes)."""
    key = "autoattack_vs_baseline_p"
    if key not in summary:
        return ""
    rows = summary[(summary["checkpoint"] == checkpoint) & summary[key].notna()]
    if rows.empty:
        return ""
    names = display_names(rows["method"].tolist() + [BASELINE])
    parts = [f"{names[r.method]} p = {getattr(r, key):.2g} "
             f"({int(r.autoattack_vs_baseline_c)} points only it gets right, "
             f"{int(r.autoattack_vs_baseline_b)} only {names[BASELINE]})"
             for r in rows.itertuples()]
    return (f"Paired test against {names[BASELINE]} (exact McNemar on the same AutoAttack points, "
            f"{checkpoint} checkpoint, pooled over seeds): " + "; ".join(parts) + ".")

