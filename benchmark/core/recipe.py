"""Official recipes: a paper's own training setting for one dataset, declared in the method's file.

A recipe sets the protocol's *training* fields (model, epochs, batch size, optimizer, schedule,
the training attack) and the method's hyperparameters, as the paper's official code runs them.
Data sizes, checkpoint selection on validation and the evaluation stay the preset's, so one
evaluator still judges every method (`fairbench run --recipe official`; docs/recipes.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the protocol fields a recipe may set: what a paper's training script decides
RECIPE_FIELDS = ("model", "epochs", "batch_size", "lr", "lr_milestones", "momentum", "nesterov",
                 "weight_decay", "finetune_lr", "eps", "alpha", "train_steps")
RECIPE_NAME = "official"  # the variant label of a method trained under its own recipe


@dataclass(frozen=True)
class Recipe:
    """One dataset's official recipe of a method.

    `protocol`: RECIPE_FIELDS values; `hparams`: the method's own; `base_hparams`: those of the
    warm-start base, which the official scripts train with the same settings (a warm-started
    method's recipe covers its whole pipeline); `source`: repository@commit and file (or paper
    table) the values were read from; `deviations`: what the harness cannot run exactly, in words;
    `family`: the name its base is trained under (default: the method's own).
    """

    source: str
    protocol: dict[str, Any]
    hparams: dict[str, Any] = field(default_factory=dict)
    base_hparams: dict[str, Any] = field(default_factory=dict)
    deviations: str = ""
    family: str = ""  # methods of one family share their recipe's base (the FRL variants)

    def problems(self, hparam_names: set[str]) -> list[str]:
        """What is wrong with the declaration itself (values are checked when applied)."""
        out = [f"{k!r} is not a recipe field ({', '.join(RECIPE_FIELDS)})"
               for k in self.protocol if k not in RECIPE_FIELDS]
        out += [f"{k!r} is not a hyperparameter of the method" for k in self.hparams
                if k not in hparam_names]
        if not self.source.strip():
            out.append("a recipe must name its source")
        return out


def recipes_of(method_cls: type) -> dict[str, Recipe]:
    """The recipes a method class declares itself: a subclass (a user's variant of TRADES) does
    not inherit its parent's paper recipe."""
    return method_cls.__dict__.get("recipes", {})


def base_variant(method: str, recipe: Recipe) -> str:
    """The variant label of a warm-start base trained under `method`'s recipe."""
    return f"recipe={recipe.family or method}"
