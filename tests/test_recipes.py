"""Official recipes: each declared recipe equals the facts its method's docstring states, applies
to its dataset's `full` preset, plans as METHOD[official] (a warm start's base under the same
recipe), is refused in one line where a method has none, and docs/recipes.md is current."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from recipe_facts import same, stated_recipes

from benchmark.catalog import method_registry
from benchmark.cli.main import main
from benchmark.common.errors import UserError
from benchmark.core.recipe import RECIPE_FIELDS, Recipe, recipes_of
from benchmark.planning.plan import plan
from benchmark.report.recipes import DOCS_BEGIN, DOCS_END, recipes_markdown

ROOT = Path(__file__).resolve().parents[1]
# the methods of methods/ (tests register helper methods of their own, which have no paper)
METHODS = [n for n in method_registry().names()
           if method_registry().get(n).__module__.startswith("methods.")]
RECIPES = [(name, dataset) for name in METHODS
           for dataset in recipes_of(method_registry().get(name))]


def test_no_method_is_silently_without_a_recipe():
    """A method without a recipe (one of yours, say) is named under the docs table, never
    silently absent (and --recipe refuses it in one line)."""
    text = recipes_markdown()
    listed = text.split("without an official recipe: ")[1].split(".")[0].split(", ")
    for name in METHODS:
        assert f"| {name} |" in text or name in listed, name


@pytest.mark.parametrize(("name", "dataset"), RECIPES)
def test_a_recipe_equals_its_docstring(name: str, dataset: str) -> None:
    cls = method_registry().get(name)
    recipe = cls.recipes[dataset]
    stated = stated_recipes(inspect.getdoc(cls) or "")
    assert dataset in stated, f"{name}'s docstring states no recipe for {dataset}"
    source, facts = stated[dataset]
    assert source == recipe.source
    declared = {**recipe.protocol, **recipe.hparams,
                **{f"base.{k}": v for k, v in recipe.base_hparams.items()}}
    assert set(facts) == set(declared), f"stated {sorted(facts)}, declared {sorted(declared)}"
    for key, value in declared.items():
        assert same(value, facts[key]), f"{name} {dataset} {key}: {value} vs {facts[key]}"
    assert not recipe.problems(set(cls().hparams()))


@pytest.mark.parametrize(("name", "dataset"), RECIPES)
def test_a_recipe_plans_on_the_full_preset(name: str, dataset: str) -> None:
    recipe = method_registry().get(name).recipes[dataset]
    waves = plan(dataset=dataset, preset="full", methods=[name], seeds=[0], recipe=True)
    run = waves[-1][0]
    assert run.label == f"{name}[official]"
    for key, value in recipe.protocol.items():
        assert same(getattr(run.protocol, key), value), key
    for key, value in recipe.hparams.items():
        assert same(getattr(run.method, key), value), key
    if run.base is not None:  # the base is trained under the same recipe, with its own hparams
        assert run.base.label.endswith(f"[recipe={recipe.family or name}]")
        assert run.base.protocol.spec_dict() == run.protocol.spec_dict()
        for key, value in recipe.base_hparams.items():
            assert same(getattr(run.base.method, key), value), key


def test_a_family_shares_one_base():
    waves = plan(dataset="cifar10", preset="full", methods=["frl_rw", "frl_rwrm", "frl_rm"],
                 seeds=[0], recipe=True)
    assert [sorted(r.label for r in wave) for wave in waves] == [
        ["trades[recipe=frl]"], ["frl_rm[official]", "frl_rw[official]", "frl_rwrm[official]"]]


def test_user_settings_win_over_a_recipe():
    waves = plan(dataset="cifar10", preset="full", methods=["trades"], seeds=[0], recipe=True,
                 overrides={"epochs": 3}, method_overrides={"trades": {"beta": 2.0}})
    run = waves[0][0]
    assert run.protocol.epochs == 3 and run.method.beta == 2.0
    recipe = method_registry().get("trades").recipes["cifar10"]
    assert run.protocol.model == recipe.protocol["model"]


def test_no_recipe_for_the_dataset_is_one_line(tmp_path: Path, capsys) -> None:
    code = main(["run", "--dataset", "fmnist", "--preset", "smoke", "--methods", "trades",
                 "--recipe", "official", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "trades has no official recipe for fmnist" in err[0] and "cifar10" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_subclass_does_not_inherit_its_parents_recipe():
    trades = method_registry().get("trades")
    child = type("MyTrades", (trades,), {})
    assert recipes_of(trades) and recipes_of(child) == {}


def test_a_recipe_does_not_combine_with_a_sweep():
    with pytest.raises(UserError, match="does not combine"):
        plan(dataset="cifar10", preset="full", methods=["trades"], seeds=[0], recipe=True,
             sweep={"trades.beta": ["1"]})


def test_a_bad_recipe_is_named():
    recipe = Recipe(source="", protocol={"lr": 0.1, "dropout": 0.5}, hparams={"gamma": 1})
    problems = recipe.problems({"beta"})
    assert len(problems) == 3 and "'dropout' is not a recipe field" in problems[0]
    assert set(RECIPE_FIELDS) >= {"model", "epochs", "lr_milestones", "nesterov"}


def test_smoke_run_under_a_recipe(tmp_path: Path, monkeypatch) -> None:
    """A warm-started method and its base train under a (smoke-sized) recipe end to end."""
    ham = method_registry().get("ham")
    smoke = Recipe(source="test", protocol={"epochs": 2, "lr": 0.02, "nesterov": True},
                   hparams={"drop_step": 1})
    monkeypatch.setattr(ham, "recipes", {"fmnist": smoke})
    results = tmp_path / "r"
    code = main(["run", "--preset", "smoke", "--methods", "ham", "--recipe", "official",
                 "--results", str(results), "--quiet"])
    assert code == 0
    root = results / "fmnist" / "smoke"
    assert (root / "ham[official]" / "seed0" / "record.json").exists()
    assert (root / "pgd_at[recipe=ham]" / "seed0" / "record.json").exists()
    assert "ham[official]" in (root / "report" / "table.csv").read_text()


def test_docs_table_is_current():
    text = (ROOT / "docs" / "recipes.md").read_text()
    table = text.split(DOCS_BEGIN, 1)[1].split(DOCS_END, 1)[0].strip()
    assert table == recipes_markdown(), "regenerate: fairbench list recipes --markdown"
