"""`fairbench new-method NAME`: write a documented method template into methods/."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from benchmark.errors import UserError

TEMPLATE = '''"""{title}: one line saying what the method does (Author et al., VENUE YEAR).

Paper: <link>. Official code: <link>. Say here where this implementation deviates from either.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import UserError
from benchmark.method import Method, TrainContext, register_method
from benchmark.protocols import Protocol
from benchmark.settings import setting


@register_method("{name}")
class {cls}(Method):
    """{title}. Hyperparameters are the dataclass fields below (set with --set {name}.FIELD=V)."""

    # Warm start from another method's run at round(begin_fraction * epochs), e.g.:
    # warm_start_base = "pgd_at"
    # begin_fraction = 50 / 120

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


def write_template(name: str, directory: Path) -> Path:
    """Write the method template for `name` into `directory`; bad input is a one-line UserError."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise UserError(f"method name {name!r} must be a lowercase identifier like my_method")
    directory = Path(directory)
    _check_directory(directory)
    from benchmark.method import load_methods

    if name in load_methods():
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
