"""The refactored `pgd` with its rules against the frozen pre-refactor `pgd` (pgd_reference.py):
bit-identical x_adv, identical per-example bookkeeping (first_miss, kept, stopped_at) and
identical forward / backward pass counts, on seeded random tiny models and inputs, for every
loss and start, scalar and per-example eps / alpha, the plain path, HAM's drop, BAT's stops and
the tests' tracking."""

from __future__ import annotations

import pytest
import torch
from pgd_reference import pgd as reference_pgd
from test_attacks import Track
from torch import nn

from benchmark.core.attacks import PassCounter, PGDRule, pgd
from methods.bat import FirstAdversarial, LastClean
from methods.ham import DropEasy

STEPS = 4
LOSSES = ("ce", "kl", "cw")
STARTS = ("uniform", "trades", "trades_clipped", "none")

# name -> (the new rule, or None for the plain path; the old call's flags)
RULES = {
    "plain": (lambda: None, {}),
    "drop_0": (lambda: DropEasy(0), {"drop_after": 0}),
    "drop_2": (lambda: DropEasy(2), {"drop_after": 2}),
    "drop_K": (lambda: DropEasy(STEPS), {"drop_after": STEPS}),
    "first_miss_0": (lambda: FirstAdversarial(0), {"stop": "first_miss", "patience": 0}),
    "first_miss_1": (lambda: FirstAdversarial(1), {"stop": "first_miss", "patience": 1}),
    "before_miss": (lambda: LastClean(), {"stop": "before_miss"}),
    "track": (lambda: Track(), {"track": True}),
}


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if seed % 3 == 0:
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    elif seed % 3 == 1:
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.Flatten(), nn.Linear(64, 3))
        model(torch.rand(32, 1, 4, 4))  # non-trivial running statistics
    else:
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)  # steep enough that the attack flips predictions within a few steps
    return model.train()


def _inputs(seed: int, per_example: bool) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(100 + seed)
    x, y = torch.rand(12, 1, 4, 4, generator=g), torch.randint(0, 3, (12,), generator=g)
    x[:3, :, 0] = 0.0  # exact box corners, where clipping matters
    x[3:6, :, 1] = 1.0
    if not per_example:
        return x, y, 0.3, 0.1
    eps = 0.05 + 0.4 * torch.rand(12, generator=g)
    return x, y, eps, eps / 3


def _run(attack, model, counter, x, y, eps, alpha, loss, start, **kw):
    counter.forward = counter.backward = 0
    torch.manual_seed(7)
    result = attack(model, x, y, eps=eps, alpha=alpha, steps=STEPS, loss=loss, start=start, **kw)
    assert model.training  # mode restored
    return result, (counter.forward, counter.backward)


def _records(rule: PGDRule | None) -> dict[str, torch.Tensor]:
    return {k: getattr(rule, k) for k in ("first_miss", "kept", "stopped_at") if hasattr(rule, k)}


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("seed", range(3))
def test_identical_to_the_pre_refactor_pgd(seed: int, name: str):
    make_rule, flags = RULES[name]
    model = _model(seed)
    counter = PassCounter().attach(model)
    exercised = name == "plain"
    for per_example in (False, True):
        x, y, eps, alpha = _inputs(seed, per_example)
        for loss in LOSSES:
            for start in STARTS:
                case = (per_example, loss, start)
                old, old_passes = _run(reference_pgd, model, counter, x, y, eps, alpha, loss,
                                       start, **flags)
                rule = make_rule()
                new, new_passes = _run(pgd, model, counter, x, y, eps, alpha, loss, start,
                                       rule=rule)
                assert torch.equal(new.x_adv, old.x_adv), case
                assert new_passes == old_passes, case
                records = _records(rule)
                for key, value in records.items():
                    assert torch.equal(value, getattr(old, key)), (case, key)
                exercised = exercised or _mixed(records)
    assert exercised  # some case had examples the rule treated differently


def _mixed(records: dict[str, torch.Tensor]) -> bool:
    """Whether the rule told some examples apart in this case: dropped and kept ones, stopped
    ones and ones run to the end, or first misclassified during the attack."""
    if "kept" in records and 0 < int(records["kept"].sum()) < len(records["kept"]):
        return True
    if "stopped_at" in records:
        return 0 < int((records["stopped_at"] < STEPS).sum()) < len(records["stopped_at"])
    return bool(((records["first_miss"] > 0) & (records["first_miss"] <= STEPS)).any())


def test_the_rules_record_what_the_old_result_reported():
    assert _records(DropEasy(1)) == {}  # records appear with `begin` (one per attack call)
    drop = DropEasy(1)
    drop.begin(3, STEPS, torch.device("cpu"))
    assert set(_records(drop)) == {"first_miss", "kept"}
    for rule in (FirstAdversarial(1), LastClean()):
        rule.begin(3, STEPS, torch.device("cpu"))
        assert set(_records(rule)) == {"stopped_at"}
