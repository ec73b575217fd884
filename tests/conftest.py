"""Shared fixtures: tiny models and a smoke FMNIST results directory built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# one thread per pytest-xdist worker (two workers on two cores), else up to two
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads())
torch.set_num_threads(THREADS)
# ... and as many in every process a test starts (launchers, workers, submitit jobs): torch's
# default of one thread per core, beside the other pytest worker, oversubscribes the cores, and
# spinning OpenMP threads then take twice the time (measured: two launchers, 30 s -> 14 s).
os.environ["OMP_NUM_THREADS"] = str(THREADS)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pgd_at and trades, seed 0, smoke preset, trained and evaluated through the CLI."""
    from benchmark.cli.main import main

    results = tmp_path_factory.mktemp("smoke_results")
    code = main(["run", "--dataset", "fmnist", "--preset", "smoke", "--methods", "pgd_at,trades",
                 "--seeds", "0", "--results", str(results), "--quiet", "--no-report"])
    assert code == 0
    return results
