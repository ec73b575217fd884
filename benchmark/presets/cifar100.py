"""CIFAR-100 presets (L-inf eps 8/255, alpha 2/255; 100 classes, so worst-10% is reported).

GPU cost estimated as in `benchmark.presets.cifar10` (FLOP counts of PreAct ResNet-18, 5 TFLOP/s
sustained fp32 assumed; an estimate, not a measurement):
quick: 10000 train images x 25.5 GFLOP = 255 TFLOP/epoch -> 51 s; x 16 epochs x 3.15 (core
methods) -> 43 min; validation 1000 images -> 5 s/epoch x 47 epochs -> 4 min; evaluation 1000
test + 300 AutoAttack points -> 56 s x 8 checkpoints -> 7.5 min. Total ~55 min.
full: as CIFAR-10 (47000 train images after the 30-per-class validation split, 120 epochs):
~8 h per PGD-AT run, ~25 h for the core methods, ~3 h per standard AutoAttack evaluation.
smoke: `small_cnn`, one or two images per class; its numbers mean nothing.
"""

from benchmark.protocols import Protocol, register_preset

THREAT = dict(eps=8 / 255, alpha=2 / 255, train_steps=10)

# The literature's recipe; validation holds out 30 images per class (3000 in all).
register_preset(Protocol(
    dataset="cifar100", preset="full", model="preact_resnet18", val_per_class=30,
    epochs=120, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((60, 0.1), (90, 0.01), (110, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10, aa_version="standard",
))

# One modest GPU, about an hour: 100 training images per class for 16 epochs (milestones at
# 60/120, 90/120, 110/120 of 16), 10 test and 3 AutoAttack points per class.
register_preset(Protocol(
    dataset="cifar100", preset="quick", model="preact_resnet18", val_per_class=10,
    train_per_class=100, test_per_class=10,
    epochs=16, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((8, 0.1), (12, 0.01), (15, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10,
    aa_version="custom", aa_attacks=("apgd-ce", "apgd-t"), aa_per_class=3,
    aa_restarts=1, aa_targets=3, aa_iters=100,
))

# Seconds on a CPU, for tests.
register_preset(Protocol(
    dataset="cifar100", preset="smoke", model="small_cnn", val_per_class=1,
    train_per_class=2, test_per_class=1,
    epochs=2, batch_size=32, lr=0.05, weight_decay=5e-4,
    lr_milestones=((1, 0.1),), finetune_lr=0.001,
    eps=8 / 255, alpha=4 / 255, train_steps=2, val_steps=2, eval_pgd_steps=2, eval_cw_steps=2,
    aa_version="custom", aa_attacks=("apgd-ce",), aa_per_class=1,
    aa_restarts=1, aa_targets=2, aa_iters=2, eval_batch_size=128,
))
