"""Render the table (layout.Table) as LaTeX booktabs, Markdown and CSV."""

from __future__ import annotations

import pandas as pd

from benchmark.report.captions import Facts, caption_sentences, missing_note, short_caption
from benchmark.report.collect import Collection
from benchmark.report.table_model import Cell, Column, Panel, Table
from benchmark.report.views import views_of

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
LATEX_SYMBOLS = {"pm": r"$\pm$", "eps": r"$\varepsilon$", "rho": r"$\rho$", "pct": r"\%",
                 "rho_def": r"$\rho = (W - W_0)/W_0 + (A - A_0)/A_0$"}
MD_SYMBOLS = {"pm": "±", "eps": "ε", "rho": "ρ", "pct": "%",
              "rho_def": "ρ = (W − W₀)/W₀ + (A − A₀)/A₀"}
LATEX_PREAMBLE = "% fairbench report table; needs \\usepackage{booktabs} in the preamble\n"
LONGTABLE_PREAMBLE = LATEX_PREAMBLE.replace("{booktabs}", "{booktabs,longtable}")


def latex_escape(text: str) -> str:
    """Text safe for LaTeX text mode (frl_rwrm -> frl\\_rwrm)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    out = str(text).replace("\\", "\\\\").replace("|", "\\|")
    for ch in "*_`[]<>":
        out = out.replace(ch, "\\" + ch)
    return out


def _latex_number(text: str) -> str:
    return "$-$" + text[1:] if text.startswith("-") else text


def _latex_cell(cell: Cell) -> str:
    if cell.mean is None:
        return "--"
    mean = _latex_number(cell.mean)
    mean = rf"\textbf{{{mean}}}" if cell.bold else mean
    return mean if cell.std is None else rf"{mean} $\pm$ {cell.std}"


def md_cell(cell: Cell) -> str:
    if cell.mean is None:
        return "—"
    mean = f"**{cell.mean}**" if cell.bold else cell.mean
    return mean if cell.std is None else f"{mean} ± {cell.std}"


def _latex_label(col: Column, unit: str) -> str:
    return LATEX_SYMBOLS["rho"] if col.label == "rho" else latex_escape(col.label)


def _groups(columns: list[Column], unit: str) -> list[tuple[str, int]]:
    """Runs of adjacent columns sharing a group header: (header, width)."""
    runs: list[tuple[str, int]] = []
    for col in columns:
        name = f"{col.group} ({unit})" if col.kind == "seconds" else col.group
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    return runs


def latex_rows(lead: list[str], row: list[Cell]) -> list[str]:
    """A method's means on one line after its `lead` cells (LaTeX already); its stds (if any)
    below in a smaller font, so columns stay narrow."""
    means = lead + [_latex_cell(Cell(c.mean, None, c.bold)) for c in row]
    lines = [" & ".join(means) + r" \\"]
    if any(c.std is not None for c in row):
        stds = [""] * len(lead) + [rf"{{\tiny $\pm${c.std}}}" if c.std is not None else ""
                                   for c in row]
        lines.append(" & ".join(stds) + r" \\")
    return lines


PANEL_LETTERS = "abcdefgh"
PAGE_LINES = 50  # table lines (rows, std rows, panel titles) one float holds on an article page


def _panel_lines(panel: Panel) -> int:
    """A panel's lines: its title, and the lines `latex_rows` writes per method."""
    return 1 + sum(len(latex_rows([], row)) for row in panel.cells)


def render_latex(table: Table, facts: Facts, coll: Collection, what: str = "accuracy") -> str:
    """Booktabs `table` floats that fit a one-column article: all panels (best, last; per view
    in a tuned comparison) in one float when they fit a page, with the details and the
    missing-run note below; else one float per panel (label suffix -a, -b, ...) and the note in
    a float of its own after them (suffix -notes): a full panel leaves no room for a note that
    names warm starts and failed runs. One-sentence captions."""
    suffix = "" if what == "accuracy" else f"-{what}"
    label = f"tab:fairbench-{latex_escape(facts.dataset)}-{latex_escape(facts.preset)}{suffix}"
    caption = short_caption(facts, LATEX_SYMBOLS, latex_escape, what)
    details = " ".join(caption_sentences(facts, LATEX_SYMBOLS, latex_escape))
    note = rf"\parbox{{\linewidth}}{{\footnotesize {details} {latex_escape(missing_note(coll))}}}"
    indexed = list(enumerate(table.panels))
    if sum(_panel_lines(p) for p in table.panels) <= PAGE_LINES:
        return LATEX_PREAMBLE + _latex_float(table, indexed, caption, [label], note)
    floats = []
    for k, (i, panel) in enumerate(indexed):
        letter = PANEL_LETTERS[i]
        labels = [f"{label}-{letter}"] + ([label] if k == 0 else [])  # the table's: first float
        floats.append(_latex_float(
            table, [(i, panel)], f"{caption} ({letter}) {latex_escape(panel.title)}.", labels,
            "", placement="tp"))
    span = f"({PANEL_LETTERS[0]})-({PANEL_LETTERS[len(indexed) - 1]})"
    floats.append("\n".join([
        r"\begin{table}[tp]", r"\centering", rf"\caption{{{caption} Notes to {span}.}}",
        rf"\label{{{label}-notes}}", note, r"\end{table}"]) + "\n")
    return LATEX_PREAMBLE + "\n".join(floats)


def _latex_float(table: Table, panels: list[tuple[int, Panel]], caption: str,
                 labels: list[str], note: str, placement: str = "t") -> str:
    """One `table` float holding `panels` (index in the table, panel), `note` below; a float
    near a page's height needs placement `tp` (a float page) rather than `t`."""
    lead = 2  # method, seeds
    width = lead + len(table.columns)
    head, rules, start = [""] * lead, [], lead + 1
    for name, n in _groups(table.columns, table.time_unit):
        head.append(rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(name)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
        start += n
    names = ["Method", "$n$"] + [_latex_label(c, table.time_unit) for c in table.columns]
    lines = [
        rf"\begin{{table}}[{placement}]",
        r"\centering",
        rf"\caption{{{caption}}}",
        *(rf"\label{{{lb}}}" for lb in labels),
        r"\scriptsize",
        r"\setlength{\tabcolsep}{3pt}",
        r"\begin{tabular}{l" + "r" * (width - 1) + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        " ".join(rules),
        " & ".join(names) + r" \\",
    ]
    for i, panel in panels:
        lines.append(r"\midrule")
        letter = PANEL_LETTERS[i]
        lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{({letter}) "
                     rf"{latex_escape(panel.title)}}}}} \\")
        lines.append(r"\addlinespace[2pt]")
        for name, seeds, row in zip(panel.labels, panel.seeds, panel.cells, strict=True):
            lines += latex_rows([latex_escape(name), seeds], row)
    lines += [r"\bottomrule", r"\end{tabular}"]
    if note:
        lines += [r"\par\smallskip", note]
    return "\n".join([*lines, r"\end{table}"]) + "\n"


def render_standalone(*table_files: str) -> str:
    """A plain one-column article (booktabs, and longtable for `tune` and `views`) that
    inputs the tables, for pdflatex: if a table is too wide for the text, pdflatex says so
    (overfull box)."""
    return "\n".join([
        r"\documentclass{article}",
        r"\usepackage{booktabs,longtable}",
        r"\begin{document}",
        *(rf"\input{{{name}}}" for name in table_files or ("table",)),
        r"\end{document}",
    ]) + "\n"


def _md_header(col: Column, unit: str) -> str:
    label = col.md_label.replace("rho", MD_SYMBOLS["rho"])
    return f"{label} ({unit})" if col.kind == "seconds" else label


def render_markdown(table: Table, facts: Facts, coll: Collection) -> str:
    """Caption paragraph, one Markdown table per panel, then the missing-run note."""
    caption = " ".join(caption_sentences(facts, MD_SYMBOLS, md_escape))
    header = ["Method", "n"] + [md_escape(_md_header(c, table.time_unit)) for c in table.columns]
    align = [":---", "---:"] + ["---:"] * len(table.columns)
    out = [f"**Table.** {caption}", ""]
    for i, panel in enumerate(table.panels):
        out += [f"#### ({PANEL_LETTERS[i]}) {panel.title}", "",
                "| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        for label, seeds, row in zip(panel.labels, panel.seeds, panel.cells, strict=True):
            cells = [md_escape(label), seeds] + [md_cell(c) for c in row]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out.append(md_escape(missing_note(coll)))
    return "\n".join(out) + "\n"


def table_frame(table: Table, summary: pd.DataFrame, coll: Collection) -> pd.DataFrame:
    """The table's numbers as a tidy frame (CSV): accuracies and Std in percent, time in the
    table's unit, each shown column with its std where the table shows one and its 95 %
    bootstrap interval (`_ci95_lo`, `_ci95_hi`) where it has one."""
    unit = {"s": 1.0, "min": 60.0, "h": 3600.0}[table.time_unit]
    frame = summary[["checkpoint", "method", "seeds"]].copy()
    frame["seeds_expected"] = [len(coll.expected.get(m, [])) for m in frame["method"]]
    if coll.views:  # which panels show the row: defaults, tuned or defaults+tuned
        frame.insert(2, "view", [views_of(coll.views, m) for m in frame["method"]])
    for col in table.columns:
        scale = {"acc": 100.0, "spread": 100.0, "seconds": 1.0 / unit}.get(col.kind, 1.0)
        name = col.key.replace("_std", "_class_std") if col.kind == "spread" else col.key
        if col.kind == "seconds":  # train_time_min, train_time_with_warm_start_min, ...
            name = f"{col.key.replace('seconds', 'time')}_{table.time_unit}"
        frame[name] = summary[col.key] * scale
        if col.show_std:
            frame[f"{name}_std"] = summary[f"{col.key}_std"] * scale
        for end in ("lo", "hi"):  # the 95 % bootstrap interval (intervals.py)
            if f"{col.key}_{end}" in summary:
                frame[f"{name}_ci95_{end}"] = summary[f"{col.key}_{end}"] * scale
    for col in ("b", "c", "p"):  # the paired test against the baseline (intervals.py)
        key = f"autoattack_vs_baseline_{col}"
        if key in summary:
            frame[key] = summary[key]
    return frame.round(6)
