"""Invariants of the shared PGD primitive and the passes counter."""

import torch
import torch.nn.functional as F
from torch import nn
from untrained import untrained

from benchmark.core.attacks import Iterate, PassCounter, PGDRule, pgd
from benchmark.core.losses import cw_margin


def _model() -> nn.Module:
    return untrained("small_cnn", (1, 28, 28))


def _batch(n: int = 16):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_stays_in_ball_and_box_for_every_loss_and_start():
    model = _model()
    x, y = _batch()
    for loss in ("ce", "kl", "cw"):
        for start in ("uniform", "trades"):
            adv = pgd(model, x, y, eps=0.1, alpha=0.03, steps=5, loss=loss, start=start).x_adv
            assert (adv - x).abs().max() <= 0.1 + 1e-6
            assert adv.min() >= 0 and adv.max() <= 1


def test_loss_not_lower_than_at_start():
    model = _model()
    x, y = _batch()
    torch.manual_seed(3)
    adv = pgd(model, x, y, eps=0.1, alpha=0.01, steps=10, start="none").x_adv
    with torch.no_grad():
        before = F.cross_entropy(model(x), y)
        after = F.cross_entropy(model(adv), y)
    assert after >= before


def test_per_example_eps_respected():
    model = _model()
    x, y = _batch(8)
    eps = torch.linspace(0.01, 0.2, 8)
    adv = pgd(model, x, y, eps=eps, alpha=eps / 4, steps=6).x_adv
    dist = (adv - x).abs().flatten(1).max(1).values
    assert torch.all(dist <= eps + 1e-6)
    assert torch.all(dist >= eps * 0.5)  # it does move towards the boundary of each ball


def test_mode_is_restored_and_attack_runs_in_eval_mode():
    model = _model().train()
    seen = []
    model.register_forward_pre_hook(lambda m, i: seen.append(m.training))
    x, y = _batch(4)
    pgd(model, x, y, eps=0.1, alpha=0.05, steps=2)
    assert seen and not any(seen)
    assert model.training


def test_pass_counter_counts_forward_and_backward_examples():
    model = _model()
    counter = PassCounter().attach(model)
    x, y = _batch(8)
    pgd(model, x, y, eps=0.1, alpha=0.05, steps=3)
    assert (counter.forward, counter.backward) == (24, 24)
    with torch.no_grad():
        model(x)
    assert (counter.forward, counter.backward) == (32, 24)
    pgd(model, x, y, eps=0.1, alpha=0.05, steps=3, loss="kl")  # + clean forward for the target
    assert (counter.forward, counter.backward) == (64, 48)


class Track(PGDRule):
    """first_miss[i] = the first iterate (0 = the start point) at which example i is seen
    misclassified, steps + 1 if never; every iterate is seen, the last one through one extra
    check forward. Nobody is stopped."""

    def begin(self, n: int, steps: int, device: torch.device) -> None:
        self.steps = steps
        self.first_miss = torch.full((n,), steps + 1, dtype=torch.long, device=device)

    def check_at(self, t: int) -> bool:
        return t == self.steps

    def visit(self, it: Iterate) -> torch.Tensor:
        seen = self.first_miss[it.idx]
        self.first_miss[it.idx] = torch.where(it.wrong & (seen > it.steps), it.t, seen)
        return torch.ones_like(it.wrong)


def test_first_miss_tracking():
    model = _model()
    x, y = _batch(16)
    with torch.no_grad():
        clean_wrong = model(x).argmax(1) != y
    track = Track()
    pgd(model, x, y, eps=0.0, alpha=0.0, steps=3, start="none", rule=track)
    # eps 0: the iterate is x itself, so misclassified at 0 or never (steps + 1)
    expected = torch.where(clean_wrong, 0, 4)
    assert torch.equal(track.first_miss, expected)


def test_cw_margin():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 0])
    assert torch.allclose(cw_margin(logits, y), torch.tensor([-1.0, 3.0]))


def test_robust_points_are_clean_correct_and_only_those_are_attacked():
    from benchmark.core.evaluation.predictions import robust_predictions

    class Fixed(torch.nn.Module):  # predicts class 0 always, whatever the input
        def forward(self, x):
            out = torch.zeros(len(x), 3)
            out[:, 0] = 1.0 + 0 * x.flatten(1).sum(1)
            return out

    attacked: list[int] = []
    model = Fixed()
    model.register_forward_hook(lambda m, i, o: attacked.append(len(i[0])))
    x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 0])
    clean = torch.zeros(6, dtype=torch.long)
    pred = robust_predictions(model, x, y, clean, eps=0.1, alpha=0.05, steps=2, loss="ce",
                              batch_size=4, device=torch.device("cpu"))
    assert torch.equal(pred, clean)  # the clean-wrong points keep their wrong prediction
    assert sum(attacked) == 3 * (2 + 1)  # 3 clean-correct points x (2 steps + final forward)


def test_trades_start_takes_its_first_gradient_unclipped_as_the_official_code():
    """Reference written from the official TRADES loop: x_adv = x + 0.001 N(0,1); per step the
    KL gradient at x_adv, a sign step, then projection to the eps ball and [0, 1]."""
    from benchmark.core.losses import kl_per_example

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.rand(5, 1, 4, 4)
    x[:, :, 0] = 0.0  # exact 0 and 1 pixels: where clipping the start first would differ
    x[:, :, 1] = 1.0
    y = torch.tensor([0, 1, 2, 0, 1])
    eps, alpha, steps = 0.1, 0.03, 3
    torch.manual_seed(7)
    ours = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, loss="kl", start="trades").x_adv
    torch.manual_seed(7)
    with torch.no_grad():
        clean = model(x)
    ref = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        ref.requires_grad_(True)
        (grad,) = torch.autograd.grad(kl_per_example(clean, model(ref)).sum(), ref)
        ref = torch.min(torch.max(ref.detach() + alpha * grad.sign(), x - eps), x + eps)
        ref = ref.clamp(0, 1)
    assert torch.equal(ours, ref)
