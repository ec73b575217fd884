"""The leaderboard page: one self-contained `index.html` (no network, no external files).

Sortable tables, one per panel of the report's table (click a header), that lead with the
headline columns (AutoAttack average and worst class, right after the method name, kept in view
while a wide table scrolls sideways), a per-class heatmap of AutoAttack accuracy, the
report's plots (embedded PNG), the paired test against pgd_at, the protocol and AutoAttack
settings, the missing-run note and a link to each run's record.json.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path

import pandas as pd

from benchmark.report.aggregate import RHO_ATTACK, per_class_summary
from benchmark.report.captions import (
    Facts,
    caption_sentences,
    missing_note,
    paired_text,
    short_caption,
)
from benchmark.report.collect import Collection
from benchmark.report.masking import masking_text
from benchmark.report.power import detectable_text
from benchmark.report.published import num
from benchmark.report.render import MD_SYMBOLS
from benchmark.report.table_model import Table, display_names
from benchmark.report.views import VIEW_TITLES
from benchmark.report.views_table import views_html

# The page's leaderboard leads with these columns (AutoAttack avg, [overall,] worst), in the
# table's own order; the LaTeX / Markdown / CSV tables keep theirs.
HEADLINE = (f"{RHO_ATTACK}_avg", f"{RHO_ATTACK}_overall", f"{RHO_ATTACK}_worst")

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:80em;color:#222;padding:0 1em}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
.lead{position:sticky;z-index:1;background:#fff} th.lead{z-index:2;background:#f4f4f4}
td.head{background:#f3f7fc} th.head{background:#e3ecf7}
.lead-end{box-shadow:inset -1px 0 #aab}
td.best{font-weight:bold} .std,.ci{color:#777;font-size:.85em} .note{color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.heat td{text-align:center;min-width:3.5em}
"""

PAGE_SCRIPT = """
// The leading columns (method, headline) stay in view while a wide table scrolls sideways:
// each sticks at the left edge of the columns before it.
document.querySelectorAll('table.leaderboard').forEach(function (table) {
  var heads = Array.from(table.tHead.rows[0].cells).filter(function (th) {
    return th.classList.contains('lead');
  });
  var lefts = heads.map(function (th) { return th.offsetLeft - heads[0].offsetLeft; });
  Array.from(table.rows).forEach(function (row) {
    lefts.forEach(function (left, i) { row.cells[i].style.left = left + 'px'; });
  });
});
document.querySelectorAll('table.sortable th').forEach(function (th) {
  var col = th.cellIndex;  // the column within its own table
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var dir = th.dataset.dir === 'desc' ? 1 : -1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = parseFloat(a.cells[col].dataset.v), y = parseFloat(b.cells[col].dataset.v);
      if (isNaN(x) || isNaN(y)) {
        return dir * a.cells[col].textContent.localeCompare(b.cells[col].textContent);
      }
      return dir * (x - y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

# a tuned comparison draws some plots once per view: `<stem>_defaults` holds the defaults' rows,
# the plain stem the tuned rows; these suffix the titles
_DEFAULTS, _TUNED = (f", {VIEW_TITLES[view]}" for view in ("defaults", "tuned"))
PLOTS = {"avg_vs_worst": "Average vs worst-class accuracy",
         "avg_vs_worst_defaults": "Average vs worst-class accuracy" + _DEFAULTS,
         "per_class_robust": "Per-class AutoAttack accuracy",
         "per_class_robust_defaults": "Per-class AutoAttack accuracy" + _DEFAULTS,
         "val_curves": "Validation curves",
         "val_curves_defaults": "Validation curves" + _DEFAULTS,
         "method_state": "Method state per epoch"}


def _esc(text: object) -> str:
    return html.escape(str(text))


def _interval(summary: pd.DataFrame | None, checkpoint: str, method: str, key: str) -> str:
    """' [lo, hi]' (the 95 % bootstrap interval, %) of a summary cell, or ''."""
    if summary is None or f"{key}_lo" not in summary:
        return ""
    row = summary[(summary["checkpoint"] == checkpoint) & (summary["method"] == method)]
    if row.empty or pd.isna(row[f"{key}_lo"].iloc[0]):
        return ""
    lo, hi = 100 * row[f"{key}_lo"].iloc[0], 100 * row[f"{key}_hi"].iloc[0]
    return f' <span class="ci">[{lo:.1f}, {hi:.1f}]</span>'


def _page_order(table: Table) -> list[int]:
    """The table's column indices in the page's order: the headline columns first, then the
    others as the table has them."""
    head = [i for i, c in enumerate(table.columns) if c.key in HEADLINE]
    return head + [i for i in range(len(table.columns)) if i not in head]


def _cls(*names: str) -> str:
    """A class attribute of the non-empty names, or ''."""
    names = tuple(n for n in names if n)
    return f' class="{" ".join(names)}"' if names else ""


def _table(table: Table, panel_index: int, records: dict[str, list[str]],
           summary: pd.DataFrame | None = None) -> str:
    """One panel (a checkpoint, or one view of it): Method and the headline columns (they stay
    in view while the table scrolls sideways), n, the other columns, the record links."""
    panel = table.panels[panel_index]
    order = _page_order(table)
    n_head = sum(table.columns[i].key in HEADLINE for i in order)

    def kind(pos: int) -> tuple[str, ...]:
        """The classes of page column `pos` (0 is Method, 1.. the table's columns in order)."""
        if pos > n_head:
            return ()
        return ("lead", "head" if pos else "", "lead-end" if pos == n_head else "")

    heads = [f"<th{_cls(*kind(0))}>Method</th>"]
    heads += [f"<th{_cls(*kind(pos))}>{_esc(table.columns[i].md_label)}</th>"
              for pos, i in enumerate(order, start=1)]
    heads.insert(n_head + 1, "<th>n</th>")
    rows = []
    for label, method, seeds, cells in zip(panel.labels, panel.methods, panel.seeds,
                                           panel.cells, strict=True):
        links = " ".join(f'<a href="{_esc(href)}">{_esc(Path(href).parent.name)}</a>'
                         for href in records.get(method, []))
        tds = [f'<td data-v="{_esc(label)}"{_cls(*kind(0))}>{_esc(label)}</td>']
        for pos, i in enumerate(order, start=1):
            col, cell = table.columns[i], cells[i]
            value = cell.mean if cell.mean is not None else "—"
            sort = cell.mean if cell.mean is not None else "NaN"
            std = f' <span class="std">± {_esc(cell.std)}</span>' if cell.std else ""
            std += _interval(summary, panel.checkpoint, method, col.key)
            classes = _cls("best" if cell.bold else "", *kind(pos))
            tds.append(f'<td data-v="{_esc(sort)}"{classes}>{_esc(value)}{std}</td>')
        tds.insert(n_head + 1, f'<td data-v="{_esc(seeds)}">{_esc(seeds)}</td>')
        rows.append(f'<tr>{"".join(tds)}<td data-v="">{links}</td></tr>')
    return (f'<h3>{_esc(panel.title)}</h3><div class="wide"><table class="sortable leaderboard">'
            f'<thead><tr>{"".join(heads)}<th>records</th></tr></thead><tbody>{"".join(rows)}'
            f"</tbody></table></div>")


def _heatmap(coll: Collection) -> str:
    """Per-class AutoAttack accuracy (best checkpoint, mean over seeds) as coloured cells."""
    summ = per_class_summary(coll.per_class)
    if summ.empty:
        return ""
    names = display_names(coll.methods)
    head = "".join(f"<th>{_esc(c)}</th>" for c in coll.classes)
    rows = []
    for method in coll.methods:
        sub = summ[summ["method"] == method].set_index("class_index")
        cells = []
        for i in range(len(coll.classes)):
            v = sub["mean"].get(i, math.nan) if not sub.empty else math.nan
            if pd.isna(v):
                cells.append('<td data-v="NaN">—</td>')
                continue
            shade = f"hsl({round(120 * v)}, 60%, {round(88 - 30 * v)}%)"
            cells.append(f'<td data-v="{100 * v:.1f}" style="background:{shade}">'
                         f"{100 * v:.0f}</td>")
        rows.append(f'<tr><td data-v="{_esc(names[method])}">{_esc(names[method])}</td>'
                    f'{"".join(cells)}</tr>')
    return (f'<h2>Per-class AutoAttack accuracy (%)</h2><p class="note">Best checkpoint, mean '
            f'over seeds; red is low, green is high.</p><div class="wide">'
            f'<table class="sortable heat"><thead><tr><th>Method</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _plots(out: Path) -> str:
    parts = []
    for stem, title in PLOTS.items():
        path = out / f"{stem}.png"
        if (out / f"{stem}_defaults.png").exists():  # a tuned comparison: this one is tuned
            title += _TUNED
        if path.exists():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<h3>{_esc(title)}</h3><img alt="{_esc(title)}" '
                         f'src="data:image/png;base64,{data}">')
    return "<h2>Plots</h2>" + "".join(parts) if parts else ""


def _published(frame: pd.DataFrame) -> str:
    """Quoted published numbers beside ours (published.py), labelled as quoted."""
    if frame.empty:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(r.label)}</td><td>{num(r.robust_avg)}</td><td>{num(r.robust_worst)}"
        f"</td><td>{num(r.fairbench_avg)}</td><td>{num(r.fairbench_worst)}</td>"
        f"<td>{_esc(r.attack)}</td><td>{_esc(r.model)}</td><td>{_esc(r.source)}</td></tr>"
        for r in frame.itertuples())
    return ("<h2>Published numbers (quoted, not reproduced)</h2><p class=\"note\">From their "
            "sources, with other models, schedules, attacks and checkpoint rules than ours; "
            "fairbench: this report's AutoAttack numbers of the same method.</p>"
            "<table><thead><tr><th>Published as</th><th>Quoted avg</th><th>Quoted worst</th>"
            "<th>fairbench avg</th><th>fairbench worst</th><th>Attack</th><th>Model</th>"
            f"<th>Source</th></tr></thead><tbody>{rows}</tbody></table>")


def render_html(table: Table, facts: Facts, coll: Collection, out: Path,
                results: Path, published: pd.DataFrame | None = None,
                summary: pd.DataFrame | None = None, views: pd.DataFrame | None = None) -> str:
    """The page's HTML; plots are read from `out` (written before), record links are relative
    to `out`; `views` (views_table.py), for a tuned comparison, adds both views side by side."""
    records: dict[str, list[str]] = {}
    for rec in sorted(coll.records, key=lambda r: r.seed):
        label = rec.label
        record = results / coll.dataset / coll.preset / label / f"seed{rec.seed}" / "record.json"
        records.setdefault(label, []).append(Path(os.path.relpath(record, out)).as_posix())
    title = f"fairbench: {facts.dataset} ({facts.preset})"
    details = " ".join(caption_sentences(facts, MD_SYMBOLS, str))
    tables = "".join(_table(table, i, records, summary) for i in range(len(table.panels)))
    paired = paired_text(summary) if summary is not None else ""
    masking = masking_text(summary, facts.pgd_steps) if summary is not None else ""
    detectable = detectable_text(summary) if summary is not None else ""
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(short_caption(facts, MD_SYMBOLS, str, 'accuracy'))}</p>",
        f"<h2>Leaderboard</h2><p class=\"note\">Click a column header to sort. Mean over "
        f"seeds, ± std across seeds, [95 % bootstrap interval over seeds and test points] "
        f"(docs/protocols.md).</p>{tables}",
        f'<p class="note">{_esc(paired)}</p>' if paired else "",
        f'<p class="note">{_esc(detectable)}</p>' if detectable else "",
        f'<p class="note">{_esc(masking)}</p>' if masking else "",
        views_html(views, coll.tune, _esc) if views is not None and coll.tune else "",
        _heatmap(coll), _plots(out),
        _published(published if published is not None else pd.DataFrame()),
        f'<h2>Protocol and evaluation</h2><p class="note">{_esc(details)}</p>',
        f'<p class="note">{_esc(missing_note(coll))}</p>',
        f"<script>{PAGE_SCRIPT}</script></body></html>",
    ]) + "\n"
