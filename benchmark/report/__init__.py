"""Reports from run records: collect -> aggregate -> layout -> tables / plots.

- collect.py    records -> tidy DataFrames, missing and unfinished runs
- aggregate.py  mean +- std over seeds, worst class, rho vs pgd_at
- layout.py     the table's columns, formatted cells, best per column, caption facts
- tables.py     LaTeX (booktabs), Markdown and CSV renderers
- plots.py      per-class bars, average-vs-worst scatter, validation and method-state curves
- build.py      build_report, the entry point of `fairbench report`
"""

from benchmark.report.build import FORMATS, build_report

__all__ = ["FORMATS", "build_report"]
