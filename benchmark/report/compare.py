"""Two results trees, run by run: how far the same runs moved between two machines, thread
counts or library versions (`fairbench compare`).

Runs are paired by name (method label and seed). A pair with equal run keys asked for the same
computation (same spec, same code digests), so every difference is the environment's; a pair
whose keys differ is still compared, and flagged. Numbers are in accuracy points (%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.common.errors import UserError
from benchmark.report.collect import ATTACKS, metrics_frame, run_name
from benchmark.report.expected import find_runs, order_methods
from benchmark.report.published import num
from benchmark.report.render import md_escape
from benchmark.report.tidy import in_percent
from benchmark.runs.schema import CHECKPOINTS, RunRecord

STATS = ("avg", "worst")  # the compared summaries of each attack
# where two environments may differ
ENV_KEYS = ("threads", "host", "cpu", "cpu_capability", "device", "cuda", "python")
LISTED = 10  # runs found on one side only are named up to this many, else counted


@dataclass
class Comparison:
    """Every run found in both trees, with its numbers on each side."""

    a: Path
    b: Path
    records_a: dict[str, RunRecord]   # run name -> record, for the pairs only
    records_b: dict[str, RunRecord]
    only_a: list[str]                 # finished in one tree only (not compared)
    only_b: list[str]
    pairs: pd.DataFrame  # run x checkpoint x attack: <stat>_a, <stat>_b, d_<stat>, epoch_a/b

    @property
    def key_differs(self) -> list[str]:
        """Pairs that did not ask for the same computation (another spec or code)."""
        return [run for run, rec in self.records_a.items()
                if rec.spec.key != self.records_b[run].spec.key]


def _records(results: Path, dataset: str, preset: str) -> dict[str, RunRecord]:
    if not results.is_dir():
        raise UserError(f"{results} is not a results directory; pass a directory that "
                        f"`fairbench run --results` wrote to (e.g. results/reference)")
    records, _, _ = find_runs(results, dataset, preset)
    return {run_name(r.label, r.seed): r for r in records}


def compare(a: Path, b: Path, dataset: str, preset: str) -> Comparison:
    """Pair the finished runs of dataset/preset in two results trees; UserError if none pair."""
    recs_a, recs_b = _records(a, dataset, preset), _records(b, dataset, preset)
    common = [r for r in recs_a if r in recs_b]
    if not common:
        raise UserError(f"no finished run of {dataset}/{preset} is in both {a} ({len(recs_a)} "
                        f"runs) and {b} ({len(recs_b)}); pass the --dataset and --preset the "
                        f"runs used, and run the same methods and seeds in both")
    keys = ["run", "method", "seed", "checkpoint", "attack"]
    sides = [in_percent(metrics_frame([recs[r] for r in common]), "runs")[[*keys, *STATS,
                                                                           "epoch"]]
             for recs in (recs_a, recs_b)]
    pairs = sides[0].merge(sides[1], on=keys, suffixes=("_a", "_b"))  # both sides evaluated it
    for stat in STATS:
        pairs[f"d_{stat}"] = pairs[f"{stat}_b"] - pairs[f"{stat}_a"]
    pairs["epoch_same"] = (pairs["epoch_a"] == pairs["epoch_b"]) | (
        pairs["epoch_a"].isna() & pairs["epoch_b"].isna())  # a scored model has no epoch
    order = {name: {v: i for i, v in enumerate(values)} for name, values in (
        ("method", order_methods(pairs["method"])), ("checkpoint", CHECKPOINTS),
        ("attack", ATTACKS))}
    pairs = pairs.sort_values(["method", "seed", "checkpoint", "attack"],
                              key=lambda col: col.map(order[col.name]) if col.name in order
                              else col)
    return Comparison(a, b, {r: recs_a[r] for r in common}, {r: recs_b[r] for r in common},
                      sorted(set(recs_a) - set(recs_b)), sorted(set(recs_b) - set(recs_a)),
                      pairs.reset_index(drop=True))


def loss_digits(a: float, b: float) -> float:
    """How many significant digits two losses share, floor(-log10(|a - b| / max(|a|, |b|))) and
    at least 0: 2.0 and 2.0001 share 4; inf when equal, NaN when either is missing."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    if a == b:
        return math.inf
    return max(0.0, math.floor(-math.log10(abs(a - b) / max(abs(a), abs(b)))))


def first_loss_digits(ra: RunRecord, rb: RunRecord) -> tuple[int | None, float]:
    """The first epoch both histories logged (a warm-started run's is after its warm start) and
    loss_digits of its two losses; (None, NaN) without a shared epoch."""
    losses = [{line.get("epoch"): line.get("loss") for line in r.history} for r in (ra, rb)]
    shared = sorted(e for e in losses[0] if e in losses[1] and e is not None)
    if not shared:
        return None, math.nan
    values = [side[shared[0]] for side in losses]
    return shared[0], loss_digits(*(math.nan if v is None else float(v) for v in values))


def summary(comp: Comparison) -> pd.DataFrame:
    """Per checkpoint x attack, over the pairs with equal run keys (differences of environment
    only): how many pairs, how many are identical (both statistics and the checkpoint's epoch),
    and the median, maximum and standard deviation of the differences."""
    rows = []
    same_key = comp.pairs[~comp.pairs["run"].isin(comp.key_differs)]
    for (ckpt, attack), group in same_key.groupby(["checkpoint", "attack"], sort=False):
        same = group["epoch_same"].copy()
        for stat in STATS:
            same &= group[f"d_{stat}"].abs() < 1e-9
        row: dict[str, Any] = {"checkpoint": ckpt, "attack": attack, "pairs": len(group),
                               "identical": int(same.sum()),
                               "epoch_moved": int((~group["epoch_same"]).sum())}
        for stat in STATS:
            diff = group[f"d_{stat}"]
            row.update({f"median_abs_d_{stat}": diff.abs().median(),
                        f"max_abs_d_{stat}": diff.abs().max(),
                        f"sd_d_{stat}": diff.std() if len(diff) > 1 else math.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def environments(records: dict[str, RunRecord]) -> str:
    """The distinct environments of one side's runs, e.g. `threads 2, host a, torch 2.5.1`."""
    seen: dict[str, set[str]] = {}
    for rec in records.values():
        env = rec.env or {}
        for key in ENV_KEYS:
            if env.get(key) is not None:
                seen.setdefault(key, set()).add(str(env[key]))
        torch_version = (env.get("packages") or {}).get("torch")
        if torch_version:
            seen.setdefault("torch", set()).add(str(torch_version))
    return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in seen.items()) or "not recorded"


def _signed(value: float) -> str:
    """A difference in points with its sign, a dash when absent."""
    return "—" if pd.isna(value) else f"{value:+.1f}"


def _digits(epoch: int | None, value: float) -> str:
    if epoch is None or math.isnan(value):
        return "—"
    return f"{'equal' if math.isinf(value) else int(value)} (epoch {epoch})"


def _epoch(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else str(int(value))


def _runs_in_both(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'} in both"


def _runs(names: list[str]) -> str:
    listed = ": " + ", ".join(md_escape(n) for n in names) if 0 < len(names) <= LISTED else ""
    return f"{len(names)}{listed}"


def markdown(comp: Comparison, attack: str, checkpoint: str) -> str:
    """The comparison as Markdown: the environments, one row per pair for one attack and
    checkpoint, then the summary of every attack and checkpoint."""
    lines = [f"A: `{comp.a}` ({environments(comp.records_a)})",
             f"B: `{comp.b}` ({environments(comp.records_b)})", "",
             f"{_runs_in_both(len(comp.records_a))}; only in A: {_runs(comp.only_a)}; only in "
             f"B: {_runs(comp.only_b)}. Differences are B − A, in points."]
    differ = comp.key_differs
    lines.append(f"Run keys differ (another spec or code, not only the environment; shown below "
                 f"but left out of the summary): {', '.join(map(md_escape, differ))}."
                 if differ else "Every pair has the same run key: same spec and code, only the "
                 "environment differs.")
    rows = comp.pairs.query("attack == @attack and checkpoint == @checkpoint")
    lines += ["", f"{attack}, {checkpoint} checkpoint (loss digits: how many significant "
              "digits the two losses of the first epoch both logged share):", "",
              "| run | loss digits | epoch A / B | avg A | avg B | Δ avg | worst A | "
              "worst B | Δ worst |", "|" + " --- |" * 9]
    for r in rows.itertuples():
        mark = " (key differs)" if r.run in differ else ""
        digits = _digits(*first_loss_digits(comp.records_a[r.run], comp.records_b[r.run]))
        lines.append(f"| {md_escape(r.run)}{mark} | {digits} | {_epoch(r.epoch_a)} / "
                     f"{_epoch(r.epoch_b)} | {num(r.avg_a)} | {num(r.avg_b)} | "
                     f"{_signed(r.d_avg)} | {num(r.worst_a)} | {num(r.worst_b)} | "
                     f"{_signed(r.d_worst)} |")
    lines += ["", "Every attack and checkpoint, over the pairs with equal run keys (|Δ|: absolute "
              "difference; sd: standard deviation of Δ over the pairs; when the environment acts "
              "like another seed, sd/√2 is the spread it adds to one run, comparable to the "
              "seed-to-seed standard deviation):", "",
              "| checkpoint | attack | pairs | identical | epoch moved | median \\|Δ avg\\| | "
              "max \\|Δ avg\\| | sd Δ avg | median \\|Δ worst\\| | max \\|Δ worst\\| | "
              "sd Δ worst |",
              "|" + " --- |" * 11]
    for s in summary(comp).itertuples():
        lines.append(f"| {s.checkpoint} | {s.attack} | {s.pairs} | {s.identical} | "
                     f"{s.epoch_moved} | {num(s.median_abs_d_avg)} | {num(s.max_abs_d_avg)} | "
                     f"{num(s.sd_d_avg)} | {num(s.median_abs_d_worst)} | "
                     f"{num(s.max_abs_d_worst)} | {num(s.sd_d_worst)} |")
    return "\n".join(lines) + "\n"
