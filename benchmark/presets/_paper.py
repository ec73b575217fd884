"""The 32x32 paper recipe shared by the CIFAR-10/100, SVHN and Imagenette presets.

See docs/protocols.md.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.protocol import Protocol, register_preset

THREAT = dict(eps=8 / 255, alpha=2 / 255, train_steps=10)
FULL_EPOCHS = 120
FULL_MILESTONES = ((60, 0.1), (90, 0.01), (110, 0.005))  # the HAM/GAIRAT schedule


def scaled_milestones(epochs: int) -> tuple[tuple[int, float], ...]:
    """The full schedule's milestones at the same fractions of a shorter run."""
    return tuple((round(e * epochs / FULL_EPOCHS), f) for e, f in FULL_MILESTONES)


def register_paper_presets(dataset: str, *, val_per_class: int, quick_train_per_class: int,
                           quick_val_per_class: int, quick_test_per_class: int,
                           quick_aa_per_class: int, quick_epochs: int = 20, lr: float = 0.1,
                           smoke_per_class: tuple[int, int, int] = (2, 4, 2),
                           smoke_batch_size: int = 16, smoke_lr: float = 0.05,
                           method_defaults: dict[str, dict[str, Any]] | None = None) -> None:
    """Register `full` (the literature), `quick` (one modest GPU, ~1 h) and `smoke` (tests).

    full: PreAct ResNet-18, batch 128, SGD 0.9, wd 5e-4, 120 epochs, lr /10 at 60, /100 at 90,
    /200 at 110, PGD-10, standard AutoAttack on the full test set, FRL fine-tunes at 0.001.
    quick: the same shape on a class-balanced subset, AutoAttack APGD-CE + APGD-T (1 restart,
    3 targets) on a class-balanced subset. smoke: small_cnn, a few images, 2 steps.
    """
    common = dict(dataset=dataset, batch_size=128, momentum=0.9, weight_decay=5e-4,
                  finetune_lr=0.001, teacher_model="wrn_34_10",
                  method_defaults=dict(method_defaults or {}))
    register_preset(Protocol(
        preset="full", model="preact_resnet18", val_per_class=val_per_class,
        epochs=FULL_EPOCHS, lr=lr, lr_milestones=FULL_MILESTONES,
        **THREAT, val_steps=10, aa_version="standard", **common,
    ))
    register_preset(Protocol(
        preset="quick", model="preact_resnet18", val_per_class=quick_val_per_class,
        train_per_class=quick_train_per_class, test_per_class=quick_test_per_class,
        epochs=quick_epochs, lr=lr, lr_milestones=scaled_milestones(quick_epochs),
        **THREAT, val_steps=10,
        aa_version="custom", aa_attacks=("apgd-ce", "apgd-t"), aa_per_class=quick_aa_per_class,
        aa_restarts=1, aa_targets=3, aa_iters=100, **common,
    ))
    val, train, test = smoke_per_class
    # smoke attacks take 2 steps: HAM's early check must come before the last one (as in FMNIST)
    smoke_defaults = {**common["method_defaults"],
                      "ham": {**common["method_defaults"].get("ham", {}), "drop_step": 1}}
    register_preset(Protocol(
        preset="smoke", model="small_cnn", val_per_class=val, train_per_class=train,
        test_per_class=test, epochs=2, lr=smoke_lr, lr_milestones=((1, 0.1),),
        eps=8 / 255, alpha=4 / 255, train_steps=2, val_steps=2, eval_pgd_steps=2,
        eval_cw_steps=2, aa_version="custom", aa_attacks=("apgd-ce",), aa_per_class=1,
        aa_restarts=1, aa_targets=2, aa_iters=2,
        eval_batch_size=64 if smoke_batch_size <= 16 else 128,
        **{**common, "batch_size": smoke_batch_size, "method_defaults": smoke_defaults,
           "teacher_model": "small_cnn_wide"},
    ))
