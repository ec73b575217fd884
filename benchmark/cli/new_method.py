"""`fairbench new-method NAME`: write a documented method template into methods/."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]  # methods/ and tests/ of this checkout

TEMPLATE = '''"""{title}: one line saying what the method does (Author et al., VENUE YEAR).

Paper: <link>. Official code: <link>. Say here where this implementation deviates from either.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.errors import UserError
from benchmark.core.method import Method, TrainContext, register_method
from benchmark.core.protocol import Protocol
from benchmark.common.settings import setting


@register_method("{name}")
class {cls}(Method):
    """{title}. Hyperparameters are the dataclass fields below (set with --set {name}.FIELD=V)."""

    title = "{name}"  # the name tables and plots show (e.g. "PGD-AT"; default: the code name)

    # Warm start from another method's run at round(begin_fraction * epochs): derive the class
    # from WarmStartMethod (benchmark.core.method) instead of Method and set, e.g.:
    # warm_start_base = "pgd_at"
    # begin_fraction = 50 / 120
    # What `fairbench tune` may tune besides the learning-rate factor, e.g.:
    # search_space = {{"beta": LogRange(1.0, 12.0)}}  (from benchmark.core.search_space)

    # Each hyperparameter declares its valid range (gt/ge/lt/le, or choices=(...)); a value
    # outside it is refused in one line before any work starts. Replace this example with yours.
    temperature: float = setting(1.0, gt=0)

    def validate(self, protocol: Protocol) -> None:
        """Checks across fields and the protocol (optional; delete if you need none)."""
        if self.temperature > 100:
            raise UserError(f"{name}.temperature={{self.temperature}} must be <= 100")

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor | None:
        """One batch's loss (model in train mode). Return None to skip the update."""
        result = ctx.attack(model, x, y, loss="ce", start="uniform")  # the shared PGD primitive
        return F.cross_entropy(model(result.x_adv) / self.temperature, y)

    # Optional hooks (see benchmark/method.py): on_epoch_start / on_epoch_end return scalars to
    # log in train.jsonl (under "method"); state_dict / load_state_dict carry method state
    # across checkpoints. A non-finite loss stops the run as failed: never return NaN silently.
'''


def _check_directory(directory: Path) -> None:
    """One-line UserError unless `directory` is an existing directory."""
    if not directory.exists():
        raise UserError(f"directory {directory} does not exist; create it or pass --dir DIR")
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory; pass a directory with --dir DIR")


TEST_TEMPLATE = '''"""{title}: its own mechanism against hand computations on tiny tensors.

The generic contract (a smoke run, weights_only checkpoints, exact resume, hyperparameters from
strings, docstring) is checked for every method by tests/test_method_contract.py; here, test what
makes this method different. Replace the example below when you replace the template's loss.
"""

import torch
import torch.nn.functional as F

from benchmark.catalog import get_protocol, make_method
from benchmark.core.attacks import PassCounter, pgd
from benchmark.core.method import TrainContext


def test_loss_matches_a_hand_computation():
    protocol = get_protocol("fmnist", "smoke")
    method = make_method("{name}", protocol, {{"temperature": "2.0"}})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    ctx = TrainContext(protocol=protocol, num_classes=10, device=torch.device("cpu"),
                       counter=PassCounter(), val_loader=None)
    torch.manual_seed(1)
    loss = method.loss(model, x, y, ctx)
    torch.manual_seed(1)  # the same attack by hand: PGD on CE, then CE of logits / T
    x_adv = pgd(model, x, y, eps=protocol.eps, alpha=protocol.alpha,
                steps=protocol.train_steps).x_adv
    torch.testing.assert_close(loss, F.cross_entropy(model(x_adv) / 2.0, y))
'''


def write_test_template(name: str, directory: Path) -> Path | None:
    """tests/test_<name>.py with a mechanism-test example; None if that file exists already."""
    path = Path(directory) / f"test_{name}.py"
    if path.exists() or not Path(directory).is_dir():
        return None
    try:
        path.write_text(TEST_TEMPLATE.format(name=name, title=name.replace("_", " ").upper()))
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or type(err).__name__}); the "
                        f"method file was written, write its test yourself") from None
    return path


def write_template(name: str, directory: Path) -> Path:
    """Write the method template for `name` into `directory`; bad input is a one-line UserError."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise UserError(f"method name {name!r} must be a lowercase identifier like my_method")
    directory = Path(directory)
    _check_directory(directory)
    from benchmark.catalog import method_registry

    if name in method_registry():
        raise UserError(f"a method named {name!r} exists already; pick another name")
    path = directory / f"{name}.py"
    if path.exists():
        raise UserError(f"{path} exists; pick another name or edit that file")
    cls = "".join(part.capitalize() for part in name.split("_"))
    try:
        path.write_text(TEMPLATE.format(name=name, cls=cls, title=name.replace("_", " ").upper()))
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or type(err).__name__}); "
                        f"make {directory} writable or pass another directory with --dir DIR"
                        ) from None
    return path


def cmd_new_method(args: argparse.Namespace) -> int:
    path = write_template(args.name, Path(args.dir))
    test = write_test_template(args.name, Path(args.tests_dir))
    print(f"wrote {path}{f' and {test}' if test else ''}; edit its loss() and the test, then "
          f"`fairbench list methods` and `make test`")
    return 0


def add_parser(sub: Any) -> None:
    """The `new-method` command's arguments."""
    new = sub.add_parser("new-method", help="write a documented method template")
    new.add_argument("name")
    new.add_argument("--dir", default=str(REPO_ROOT / "methods"))
    new.add_argument("--tests-dir", default=str(REPO_ROOT / "tests"),
                     help="where its test template goes (skipped if that file exists)")
    new.set_defaults(func=cmd_new_method)
