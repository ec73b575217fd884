"""Overrides from --set strings and YAML values become the field's declared type, or a one-line
error (never a late traceback, never a second run key for the same settings)."""

from __future__ import annotations

import pytest

from benchmark.catalog import get_protocol, make_method
from benchmark.common.errors import UserError


def test_yaml_values_get_the_declared_type():
    p = get_protocol("fmnist", "smoke", {"epochs": 3, "lr_milestones": [[1, 0.1], [2, 0.01]],
                                         "aa_attacks": ["apgd-ce"], "finetune_lr": 1})
    assert p.epochs == 3 and p.lr_milestones == ((1, 0.1), (2, 0.01))
    assert p.aa_attacks == ("apgd-ce",) and p.finetune_lr == 1.0
    assert isinstance(p.finetune_lr, float)
    from_yaml = make_method("trades", p, {"beta": 6})
    from_cli = make_method("trades", p, {"beta": "6"})
    assert from_yaml.beta == from_cli.beta == 6.0 and isinstance(from_yaml.beta, float)
    assert from_yaml.hparams() == from_cli.hparams()  # one run key for the same settings


def test_optional_fields_take_none_or_their_type():
    p = get_protocol("fmnist", "smoke", {"train_per_class": "none", "aa_per_class": "3"})
    assert p.train_per_class is None and p.aa_per_class == 3
    m = make_method("frl_rwrm", p, {"begin_epoch": "1", "alpha_frac": "null"})
    assert m.begin_epoch == 1 and m.alpha_frac is None


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 2.5}, "bad value 2.5 for epochs (expected int)"),
    ({"epochs": True}, "bad value True for epochs (expected int)"),
    ({"train_per_class": "all"}, "bad value 'all' for train_per_class (expected int | None)"),
    ({"test_per_class": "1e3"}, "bad value '1e3' for test_per_class"),
    ({"amp": "maybe"}, "bad value 'maybe' for amp (expected bool)"),
    ({"lr_milestones": "5"}, "bad value '5' for lr_milestones"),
    ({"epochs": None}, "bad value None for epochs"),
])
def test_bad_protocol_values_are_one_line_errors(overrides, message):
    with pytest.raises(UserError) as err:
        get_protocol("fmnist", "smoke", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_hyperparameter_values_are_one_line_errors():
    p = get_protocol("fmnist", "smoke")
    with pytest.raises(UserError, match=r"bad value 'one' for frl_rwrm.begin_epoch"):
        make_method("frl_rwrm", p, {"begin_epoch": "one"})
    with pytest.raises(UserError, match=r"bad value 'x' for trades.beta \(expected float\)"):
        make_method("trades", p, {"beta": "x"})
