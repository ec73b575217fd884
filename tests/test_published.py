"""Published numbers (benchmark/report/published.py): the data file is well formed, names only
registered methods, and its rows appear beside our numbers, labelled as quoted."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.catalog import method_registry
from benchmark.report.published import load_published, published_beside, published_markdown
from benchmark.report.render import md_escape


def test_data_file_is_well_formed():
    frame = load_published()
    assert len(frame) >= 10 and set(frame["dataset"]) == {"cifar10"}
    assert frame[["robust_avg", "robust_worst"]].stack().between(0, 100).all()
    assert (frame["robust_worst"] <= frame["robust_avg"]).all()
    named = {m for m in frame["method"] if m}
    assert named <= set(method_registry().names())
    assert frame["source"].str.len().gt(10).all()


def test_quoted_rows_sit_beside_ours_for_the_same_dataset_only():
    summary = pd.DataFrame({"checkpoint": ["best", "best", "last"],
                            "method": ["trades", "faal", "trades"],
                            "autoattack_avg": [0.5, 0.45, 0.1],
                            "autoattack_worst": [0.2, 0.3, 0.0]})
    beside = published_beside(summary, "cifar10")
    trades = beside[beside["label"] == "TRADES"]
    assert (trades["fairbench_avg"] == 50.0).all() and (trades["fairbench_worst"] == 20.0).all()
    dafa = beside[beside["method"] == "trades_dafa"].iloc[0]
    assert math.isnan(dafa["fairbench_avg"])  # not run: no number of ours
    text = published_markdown(beside, md_escape)
    assert "quoted from their sources, not reproduced" in text
    assert "| PGD-AT+FAAL | faal | 45.5 | 31.1 | 45.0 | 30.0 |" in text
    assert published_beside(summary, "fmnist").empty
    assert published_markdown(published_beside(summary, "fmnist"), md_escape) == ""
