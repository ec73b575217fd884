"""`--recipe official`: each method trained under its paper's own recipe (core/recipe.py)."""

from __future__ import annotations

from dataclasses import replace

from benchmark.catalog import method_registry
from benchmark.common.errors import UserError
from benchmark.core.recipe import RECIPE_NAME, Recipe, base_variant, recipes_of
from benchmark.runs.job import BaseChoice, Job


def recipe_of(method: str, dataset: str) -> Recipe:
    """The method's official recipe for `dataset` (UserError naming the datasets it has)."""
    recipes = recipes_of(method_registry().get(method))
    if dataset not in recipes:
        have = ", ".join(sorted(recipes)) or "none"
        raise UserError(f"{method} has no official recipe for {dataset} (its paper's datasets: "
                        f"{have}); drop --recipe, or leave {method} out of --methods")
    return recipes[dataset]


def recipe_job(job: Job) -> Job:
    """The job under its method's official recipe: the recipe's protocol fields and
    hyperparameters under the user's own --set values, named `METHOD[official]`; a warm-started
    method's base runs under the same recipe as `BASE[recipe=METHOD]` (the official scripts train
    their warm start with their own settings)."""
    recipe = recipe_of(job.method, job.dataset)
    cls = method_registry().get(job.method)
    overrides = {**recipe.protocol, **job.overrides}
    own = {**recipe.hparams, **job.method_overrides.get(job.method, {})}
    base = None
    if cls.warm_start_base is not None:
        name = cls.warm_start_base
        base = BaseChoice(base_variant(job.method, recipe), overrides,
                          {name: {**recipe.base_hparams, **job.method_overrides.get(name, {})}})
    return replace(job, overrides=overrides,
                   method_overrides={**job.method_overrides, job.method: own},
                   variant=RECIPE_NAME, variant_protocol=False, base_choice=base)
