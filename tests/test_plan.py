"""The plan: warm-start bases inherit the user's settings and must leave epochs to train."""

from __future__ import annotations

import pytest

from benchmark.common.errors import UserError
from benchmark.planning.plan import plan


def test_base_hyperparameters_reach_the_dependent_spec(tmp_path):
    waves = plan(dataset="fmnist", preset="smoke", methods=["frl_rwrm"], seeds=[0],
                 method_overrides={"trades": {"beta": "3"}}, results=str(tmp_path))
    (base,), (frl,) = waves
    assert base.job.method == "trades" and base.method.beta == 3.0
    base_spec = base.spec
    frl_spec = frl.spec
    assert frl_spec.warm_start["run_key"] == base_spec.key  # the base that is actually trained
    default = plan(dataset="fmnist", preset="smoke", methods=["frl_rwrm"], seeds=[0],
                   results=str(tmp_path))
    assert default[1][0].spec.key != frl_spec.key  # another base, another run


def test_warm_start_at_the_last_epoch_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="begin epoch 1 leaves no epoch to train") as err:
        plan(dataset="fmnist", preset="smoke", methods=["frl_rwrm"], seeds=[0],
             overrides={"epochs": "1"}, results=str(tmp_path))
    assert "\n" not in str(err.value)


def test_keep_epochs_ignore_methods_the_protocol_cannot_run():
    from benchmark.catalog import get_protocol
    from benchmark.runs.job import default_keep_epochs

    protocol = get_protocol("fmnist", "quick", {"train_steps": 1})  # ham's drop_step 3 > 1
    assert default_keep_epochs("trades", protocol) >= {5, 7}  # DAFA's and FRL's begin epochs
    assert default_keep_epochs("pgd_at", protocol) >= {10}  # FAAL's; HAM cannot run: no error
