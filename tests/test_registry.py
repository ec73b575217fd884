"""Registry behaviour and method discovery."""

import pytest

from benchmark.catalog import get_protocol, make_method, method_registry
from benchmark.common.errors import UserError
from benchmark.common.registry import Registry
from benchmark.core.method import Method, register_method


def test_register_get_match():
    reg: Registry[int] = Registry("thing")
    reg.add("frl_rw", 1)
    reg.add("frl_rm", 2)
    reg.add("ham", 3)
    assert reg.get("ham") == 3
    assert reg.match("frl_*") == ["frl_rm", "frl_rw"]
    assert reg.match("ham,frl_rw") == ["ham", "frl_rw"]
    assert "ham" in reg and len(reg) == 3


def test_duplicate_name_is_an_error():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(UserError, match="duplicate thing name 'a': 1 and 2; rename one"):
        reg.add("a", 2)


def test_unknown_name_is_one_line_with_suggestion():
    reg: Registry[int] = Registry("method")
    reg.add("trades", 1)
    with pytest.raises(UserError) as err:
        reg.get("trade")
    assert "did you mean 'trades'" in str(err.value) and "\n" not in str(err.value)


def test_methods_are_discovered_from_files():
    names = method_registry().names()
    assert {"pgd_at", "trades"} <= set(names)


def test_duplicate_method_registration_fails():
    with pytest.raises(UserError, match=r"duplicate method name 'pgd_at': \S*methods/pgd_at\.py "
                                        r"and \S*tests/test_registry\.py; rename one"):
        @register_method("pgd_at")
        class Again(Method):
            pass


def test_make_method_parses_and_rejects_hparams():
    p = get_protocol("fmnist", "smoke")
    assert make_method("trades", p, {"beta": "3"}).beta == 3.0
    with pytest.raises(UserError, match="has no hyperparameter 'gamma'"):
        make_method("trades", p, {"gamma": "1"})
    with pytest.raises(UserError, match="bad value"):
        make_method("trades", p, {"beta": "x"})


def test_protocol_overrides():
    p = get_protocol("fmnist", "smoke", {"epochs": "3", "lr_milestones": "1:0.1,2:0.01"})
    assert p.epochs == 3 and p.lr_milestones == ((1, 0.1), (2, 0.01))
    assert p.lr_at(0) == p.lr and p.lr_at(2) == pytest.approx(p.lr * 0.01)
    with pytest.raises(UserError, match="unknown protocol field 'epoch'"):
        get_protocol("fmnist", "smoke", {"epoch": "3"})
    with pytest.raises(UserError, match="aa_version='standrd' must be one of"):
        get_protocol("fmnist", "smoke", {"aa_version": "standrd"})
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        get_protocol("fmnist", "fast")
    with pytest.raises(UserError, match="unknown dataset 'mnist'"):
        get_protocol("mnist", "quick")


def test_method_selection_words():
    from benchmark.cli.args import resolve_methods

    every = [n for n in method_registry().names() if not n.startswith("_")]
    assert resolve_methods("all") == every and len(every) >= 12
    core = resolve_methods("core")
    assert set(core) < set(every) and all(method_registry().get(n).core for n in core)
    assert resolve_methods("frl_*, ham") == ["frl_rm", "frl_rw", "frl_rwrm", "ham"]


def test_a_warm_start_on_a_plain_method_is_refused():
    """Setting warm_start_base on a plain Method would silently train from scratch."""
    with pytest.raises(UserError, match="sets warm_start_base but trains from scratch"):
        @register_method("_test_not_warm")
        class NotWarm(Method):
            warm_start_base = "pgd_at"
