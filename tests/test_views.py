"""The two views of a tuned comparison (benchmark/report/views.py): which rows each view shows,
and that rows are ranked only within their view's panel."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from latex_check import pdflatex_log

from benchmark.report.table_model import build_table
from benchmark.report.views import view_labels, views_of, without_tuned_row
from benchmark.tuning.tune_file import MethodSearch, TriedConfig, TuneFile


def _search(method: str, selected: str | None, k: int = 2) -> MethodSearch:
    labels = [method] + [f"{method}[tune={i}]" for i in range(1, k)]
    return MethodSearch(0, [TriedConfig(i, lb, {"lr_factor": 1.0}) for i, lb in
                            enumerate(labels)], selected)


def test_each_view_shows_its_rows_and_a_winning_default_is_in_both():
    tune = TuneFile(2, "robust_avg_worst", {"pgd_at": _search("pgd_at", "pgd_at"),
                                            "trades": _search("trades", "trades[tune=1]"),
                                            "bat": _search("bat", None)})
    labels = ["pgd_at", "bat", "trades", "trades[teacher]", "trades[tune=1]"]
    views = view_labels(tune, labels)
    assert views == {"defaults": ["pgd_at", "bat", "trades", "trades[teacher]"],
                     "tuned": ["pgd_at", "trades[tune=1]"]}
    assert views_of(views, "pgd_at") == "defaults+tuned"
    assert views_of(views, "trades[tune=1]") == "tuned" and views_of({}, "bat") == ""
    assert view_labels(TuneFile(2, "robust_avg_worst", {"bat": _search("bat", None)}),
                       labels) == {}  # nothing selected yet: one view
    assert view_labels(None, labels) == {}
    assert without_tuned_row(tune, labels) == ["bat"]  # its search is not decided
    assert without_tuned_row(None, labels) == []


def _per_class(method: str, accs: list[float]) -> list[dict]:
    return [{"method": method, "seed": 0, "checkpoint": ckpt, "attack": "autoattack",
             "class_index": i, "accuracy": a, "n": 2000}
            for ckpt in ("best", "last") for i, a in enumerate(accs)]


def test_a_tuned_row_never_takes_the_bold_from_the_defaults():
    """`a[tune=1]` beats everything; the defaults panel still bolds its own best (`a`, above a
    teacher `t[teacher]` that is better still but never ranked), and the tuned panel bolds
    `a[tune=1]` over `b` (its default won, so it is in both views)."""
    accs = {"a": [0.6, 0.4], "b": [0.5, 0.3], "a[tune=1]": [0.8, 0.7],
            "t[teacher]": [0.9, 0.9]}
    per_class = pd.DataFrame([row for m, acc in accs.items() for row in _per_class(m, acc)])
    summary = pd.DataFrame([
        {"checkpoint": ckpt, "method": m, "seeds": 1, "autoattack_avg": sum(acc) / 2,
         "autoattack_worst": min(acc), "train_seconds": 1.0,
         "train_seconds_with_warm_start": 1.0, "train_passes": 1.0,
         "train_passes_with_warm_start": 1.0, "autoattack_avg_separated": m == "a[tune=1]",
         "ranked": m != "t[teacher]"}
        for ckpt in ("best", "last") for m, acc in accs.items()])
    coll = SimpleNamespace(classes=["0", "1"], records=[], per_class=per_class,
                           metrics=pd.DataFrame({"balanced": [True]}),
                           expected={m: [0] for m in accs},
                           views={"defaults": ["a", "b", "t[teacher]"],
                                  "tuned": ["b", "a[tune=1]"]})
    table = build_table(summary, coll)  # type: ignore[arg-type]
    col = [c.key for c in table.columns].index("autoattack_avg")
    shown = {(p.checkpoint, p.view): {m: row[col].bold
                                      for m, row in zip(p.methods, p.cells, strict=True)}
             for p in table.panels}
    assert list(shown) == [("best", "defaults"), ("best", "tuned"), ("last", "defaults"),
                           ("last", "tuned")]
    assert shown["best", "defaults"] == {"a": True, "b": False, "t[teacher]": False}
    assert shown["best", "tuned"] == {"b": False, "a[tune=1]": True}
    assert table.panels[1].title == ("Best checkpoint (selected on validation): "
                                     "tuned (equal budget)")
    # a tuned panel names each row by its method (the configuration is in views.md)
    assert table.panels[1].labels == ["b", "a"] and table.panels[0].labels[2] == "t[teacher]"


def test_a_method_keeps_its_colour_in_both_views_and_a_long_legend_gets_columns():
    from benchmark.report.figure_style import legend_columns, method_colors
    from benchmark.report.views import same_colour

    views = {"defaults": ["pgd_at", "trades", "trades[teacher]"],
             "tuned": ["pgd_at", "trades[tune=5]"]}
    colors = method_colors(["pgd_at", "trades", "trades[teacher]", "trades[tune=5]"],
                           same_colour(views))
    assert colors["trades[tune=5]"] == colors["trades"] != colors["trades[teacher]"]
    assert len({colors[m] for m in ("pgd_at", "trades", "trades[teacher]")}) == 3
    # 3.6 inch: (3.6 - 0.8) * 72 / (1.45 * 8) = 17 rows
    assert legend_columns(17, 3.6) == 1 and legend_columns(18, 3.6) == 2
    assert legend_columns(35, 3.6) == 3


def _side_by_side():
    """Hand computation (criterion = mean of AA avg and worst): defaults, b (40, 30: 35) ranks
    above a (50, 10: 30); tuned, a[tune=1] (60, 20: 40) above b (its default won: 35). c's
    default diverged on every seed and d's search is not decided: neither is ranked, in either
    view, and neither shifts a's and b's ranks. a's margin: its selected configuration's 33
    minus the other candidate's 30 = 3 points (a[tune=2], from an earlier search, is no
    candidate, however good); b's other configuration did not finish, so b has no margin. e
    searched under robust_avg: its test criterion is its AA average."""
    from benchmark.report.views_table import views_frame

    searches = {"a": _search("a", "a[tune=1]", k=3), "b": _search("b", "b"),
                "c": _search("c", "c[tune=1]"), "d": _search("d", None),
                "e": _search("e", "e")}
    for search in searches.values():
        search.budget = 2
    searches["e"].criterion = "robust_avg"
    tune = TuneFile(2, "robust_avg_worst", searches)
    numbers = {"a": (0.5, 0.1), "b": (0.4, 0.3), "a[tune=1]": (0.6, 0.2), "c[tune=1]": (0.7, 0.6),
               "d": (0.1, 0.0), "e": (0.3, 0.0)}
    summary = pd.DataFrame([{"checkpoint": "best", "method": m, "seeds": 3,
                             "autoattack_avg": avg, "autoattack_avg_std": 0.01,
                             "autoattack_worst": worst, "autoattack_worst_std": 0.02}
                            for m, (avg, worst) in numbers.items()])
    tuning = pd.DataFrame({
        "method": ["a", "a", "a", "b", "b", "c", "c", "e", "e"],
        "settings": ["lr x1", "lr x2", "lr x3", "lr x1", "lr x2", "lr x1", "lr x4", "lr x1",
                     "lr x2"],
        "criterion": [30.0, 33.0, 90.0, 35.0, float("nan"), float("nan"), 20.0, 31.0, 20.0],
        "candidate": [True, True, False, True, True, True, True, True, True],
        "selected": [False, True, False, True, False, False, True, True, False]})
    expected = {label: [0, 1, 2] for label in [*numbers, "c"]}
    return views_frame(summary, tune, tuning, expected), tune


def test_side_by_side_ranks_each_view_by_the_criterion_and_states_the_margin():
    frame = _side_by_side()[0].set_index("method")
    assert frame.loc["a", "defaults_test_criterion"] == pytest.approx(30.0)
    assert frame.loc["a", "tuned_test_criterion"] == pytest.approx(40.0)
    assert frame.loc["e", "tuned_test_criterion"] == pytest.approx(30.0)  # robust_avg
    assert frame["defaults_rank"].dropna().to_dict() == {"a": 2, "b": 1, "e": 2}
    assert frame["tuned_rank"].dropna().to_dict() == {"a": 1, "b": 2, "e": 3}
    assert frame.loc[["c", "d"], ["defaults_rank", "tuned_rank"]].isna().all().all()
    assert frame.loc["a", "val_margin"] == pytest.approx(3.0)
    assert frame.loc["e", "val_margin"] == pytest.approx(11.0)
    assert pd.isna(frame.loc["b", "val_margin"])
    assert frame.loc["c", "defaults_seeds"] == 0 and frame.loc["c", "defaults_expected"] == 3


def test_side_by_side_renders_markdown_latex_and_html():
    import html

    from benchmark.report.views_table import views_html, views_latex, views_markdown

    frame, tune = _side_by_side()
    md = views_markdown(frame, tune)
    assert ("| a | 50.0 ± 1.0 | 10.0 ± 2.0 | 2 | 3/3 | lr x2 | 60.0 ± 1.0 | 20.0 ± 2.0 | 1 | "
            "3/3 | 3.0 |") in md
    assert "| b | 40.0 ± 1.0 | 30.0 ± 2.0 | 1 | 3/3 | default |" in md  # its default won
    assert "| c | — | — | — | 0/3 | lr x4 |" in md and "| not decided |" in md
    assert r"robust\_avg, robust\_avg\_worst" in md  # the criteria of the searches
    tex = views_latex(frame, tune)
    assert r"50.0 & 10.0 & 2 & 3/3 & lr x2 & 60.0" in tex and r"{\tiny $\pm$1.0}" in tex
    page = views_html(frame, tune, html.escape)
    assert "<td>60.0 ± 1.0</td><td>20.0 ± 2.0</td><td>1</td><td>3/3</td>" in page


def test_side_by_side_latex_fits_a_one_column_article(tmp_path):
    from benchmark.report.render import render_standalone
    from benchmark.report.views_table import views_latex

    frame, tune = _side_by_side()
    frame = pd.concat([frame] * 4, ignore_index=True)  # 20 rows: more than the 17 methods
    frame["method"] = "trades_dafa"  # the longest display names and settings of the registry
    frame["tuned_settings"] = "lr x0.534, lambda_eps=0.234, cfps_scale=0.661"
    frame["base"] = "pgd_at[tune=3]"
    tex = views_latex(frame, tune)
    assert r"\begin{longtable}" in tex and tex.count(r"\\*") >= len(frame) - 4  # means, stds
    (tmp_path / "views.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(render_standalone("views"))
    log = pdflatex_log(tmp_path, "doc.tex")
    assert "Overfull" not in log, log[log.find("Overfull"):][:300]
    assert "Float too large" not in log


def test_a_long_table_is_one_float_per_panel_and_each_fits_a_page(tmp_path):
    """17 methods and a teacher in two views, best and last checkpoint: 148 table lines, more
    than a page, so one float per panel (labels -a to -d), then the notes in a float of their
    own (a full panel has no room for a long note: the reference leaderboard's, with its warm
    starts and failed runs, overflowed the page); each compiles without an overfull box or a
    float too large. Two short panels stay one float, the notes below."""
    from benchmark.report.captions import Facts
    from benchmark.report.render import PAGE_LINES, render_latex, render_standalone
    from benchmark.report.table_model import Cell, Panel, Table, columns_for, split_table

    accuracy_columns = split_table(Table(columns_for(10, True, unbalanced=False), [], "min"))[0]
    cols = accuracy_columns.columns

    def panel(ckpt: str, view: str, n: int) -> Panel:
        methods = [f"trades_dafa[tune={i}]" for i in range(n)]
        return Panel(ckpt, f"{ckpt} checkpoint: {view}", methods, ["3"] * n,
                     [[Cell("52.0", "3.1") if c.show_std else Cell("--") for c in cols]] * n,
                     ["TRADES+DAFA"] * n, view)

    facts = Facts("fmnist", "reference", "small_cnn", "0.1", "20", "30", "custom", "200",
                  "200", "0, 1, 2", 3, "min", True, False, views=True)
    failed = SimpleNamespace(state="failed", describe=lambda: "syfar[tune=6]/seed2 (failed, "
                             "non-finite loss (nan) at epoch 1, batch 23)")
    coll = SimpleNamespace(missing=[failed] * 30, records=[])  # a note of about 40 lines
    panels = [panel(c, v, 18) for c in ("best", "last") for v in ("defaults", "tuned")]
    tex = render_latex(Table(cols, panels, "min"), facts, coll)  # type: ignore[arg-type]
    assert tex.count(r"\begin{table}") == 5 and tex.count(r"\parbox") == 1
    assert [f"tab:fairbench-fmnist-reference-{k}" in tex for k in "abcd"] == [True] * 4
    assert tex.rindex(r"\parbox") > tex.rindex(r"\begin{table}")  # the notes: last float
    assert "tab:fairbench-fmnist-reference-notes" in tex and "Notes to (a)-(d)." in tex
    assert tex.count(r"\label{tab:fairbench-fmnist-reference}") == 1  # \ref to the table holds
    assert tex.count(r"\begin{table}[tp]") == 5
    (tmp_path / "table.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(render_standalone("table"))
    log = pdflatex_log(tmp_path, "doc.tex")
    assert "Overfull" not in log and "Float too large" not in log, log[-2000:]
    short = [panel(c, "", 10) for c in ("best", "last")]
    assert 2 * (1 + 2 * 10) <= PAGE_LINES
    one = render_latex(Table(cols, short, "min"),  # type: ignore[arg-type]
                       facts, SimpleNamespace(missing=[], records=[]))
    assert one.count(r"\begin{table}") == 1 and "tab:fairbench-fmnist-reference}" in one
    assert one.index(r"\parbox") > one.index(r"\end{tabular}")


def test_the_page_names_the_view_of_each_per_view_plot(tmp_path):
    from benchmark.report.html import _plots

    for stem in ("per_class_robust", "per_class_robust_defaults", "method_state"):
        (tmp_path / f"{stem}.png").write_bytes(b"\x89PNG")
    page = _plots(tmp_path)
    assert "<h3>Per-class AutoAttack accuracy, tuned (equal budget)</h3>" in page
    assert "<h3>Per-class AutoAttack accuracy, protocol defaults</h3>" in page
    assert "<h3>Method state per epoch</h3>" in page  # one figure for all rows: no view named


def test_a_view_without_finished_runs_gets_no_figure():
    from benchmark.report.plots import _drawn, _rows, per_view

    frame = pd.DataFrame({"method": ["a", "a[tune=1]"], "accuracy": [1.0, 2.0]})
    figures = per_view("per_class_robust", {"defaults": ["a"], "tuned": ["b[tune=2]"]},
                       lambda view, labels: _drawn(_rows(frame, labels), len))
    assert figures == {"per_class_robust": None, "per_class_robust_defaults": 1}
    assert per_view("x", {}, lambda view, labels: _drawn(_rows(frame, labels), len)) == {"x": 2}
