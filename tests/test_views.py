"""The two views of a tuned comparison (benchmark/report/views.py): which rows each view shows,
and that rows are ranked only within their view's panel."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

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


def test_side_by_side_ranks_each_view_by_the_criterion_and_states_the_margin():
    """Hand computation (criterion = mean of AA avg and worst): defaults, b (40, 30: 35) ranks
    above a (50, 10: 30); tuned, a[tune=1] (60, 20: 40) above b (its default won: 35). a's
    margin: its selected configuration's 33 minus the other one's 30 = 3 points; b's other
    configuration did not finish, so b has no margin."""

    import html

    from benchmark.report.views_table import views_frame, views_html, views_latex, views_markdown

    tune = TuneFile(2, "robust_avg_worst", {"a": _search("a", "a[tune=1]"),
                                            "b": _search("b", "b")})
    numbers = {"a": (0.5, 0.1), "b": (0.4, 0.3), "a[tune=1]": (0.6, 0.2)}
    summary = pd.DataFrame([{"checkpoint": "best", "method": m, "seeds": 3,
                             "autoattack_avg": avg, "autoattack_avg_std": 0.01,
                             "autoattack_worst": worst, "autoattack_worst_std": 0.02}
                            for m, (avg, worst) in numbers.items()])
    tuning = pd.DataFrame({"method": ["a", "a", "b", "b"],
                           "criterion": [30.0, 33.0, 35.0, float("nan")],
                           "selected": [False, True, True, False]})
    frame = views_frame(summary, tune, tuning).set_index("method")
    assert frame.loc["a", "defaults_score"] == pytest.approx(30.0)
    assert frame.loc["a", "tuned_score"] == pytest.approx(40.0)
    assert frame["defaults_rank"].to_dict() == {"a": 2, "b": 1}
    assert frame["tuned_rank"].to_dict() == {"a": 1, "b": 2}
    assert frame.loc["a", "val_margin"] == pytest.approx(3.0)
    assert pd.isna(frame.loc["b", "val_margin"])
    md = views_markdown(frame.reset_index(), tune)
    assert "| 50.0 ± 1.0 | 10.0 ± 2.0 | 2 | 3 | lr x1 | 60.0 ± 1.0 | 20.0 ± 2.0 | 1 | 3 | 3.0 |" \
        in md
    assert "| default |" in md  # b's default won its search
    assert r"50.0 $\pm$ 1.0" in views_latex(frame.reset_index(), tune)
    page = views_html(frame.reset_index(), tune, html.escape)
    assert "<td>60.0 ± 1.0</td><td>20.0 ± 2.0</td><td>1</td>" in page
