"""The configurations a search tries: the default first, then a scrambled Halton sequence over
the method's search space (seeded, prefix-stable: a larger budget keeps every earlier
configuration, so growing the budget never retrains one)."""

from __future__ import annotations

from typing import Any

from scipy.stats import qmc

from benchmark.core.search_space import configuration, default_configuration, dimensions

SEQUENCE_SEED = 0  # one sequence for every method: the same budget spends the same way


def configurations(method_cls: type, budget: int) -> list[dict[str, Any]]:
    """`budget` configurations of the method: index 0 is the default (lr factor 1, the method's
    own defaults), then budget - 1 points of the space, without duplicates."""
    dims = len(dimensions(method_cls))
    sampler = qmc.Halton(d=dims, scramble=True, seed=SEQUENCE_SEED)
    out = [default_configuration(method_cls)]
    while len(out) < budget:
        point = tuple(float(u) for u in sampler.random(1)[0])
        config = configuration(method_cls, point)
        if config not in out:
            out.append(config)
    return out
