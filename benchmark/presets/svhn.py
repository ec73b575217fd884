"""SVHN presets (L-inf eps 8/255, alpha 2/255, lr 0.01 as in the literature; HAM's M = 5).

HAM's drop step M is 5 on SVHN in the HAM paper (3 elsewhere): that is preset data, in
`method_defaults`, not code in the method.
GPU cost estimated as in `benchmark.presets.cifar10` (FLOP counts of PreAct ResNet-18, 5 TFLOP/s
sustained fp32 assumed; an estimate, not a measurement):
quick: identical sizes to CIFAR-10 quick (8000 train images, 20 epochs, 1000 val, 1000 test, 300
AutoAttack points) -> ~55 min for the core methods. HAM's larger M costs a little more attack
work on easy examples than M = 3; ignored.
full: 70257 training images after the 300-per-class validation split: 1.8 PFLOP/epoch -> 6 min;
~12 h per PGD-AT run, ~38 h for the core methods; standard AutoAttack on the 26032 test points
~2.6x the CIFAR-10 cost (~8 h per checkpoint).
smoke: `small_cnn`; its numbers mean nothing.
"""

from benchmark.protocols import Protocol, register_preset

THREAT = dict(eps=8 / 255, alpha=2 / 255, train_steps=10)
HAM = {"ham": {"drop_step": 5}}

register_preset(Protocol(
    dataset="svhn", preset="full", model="preact_resnet18", val_per_class=300,
    epochs=120, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((60, 0.1), (90, 0.01), (110, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10, aa_version="standard", method_defaults=HAM,
))

# One modest GPU, about an hour (same shape as CIFAR-10 quick, lr 0.01).
register_preset(Protocol(
    dataset="svhn", preset="quick", model="preact_resnet18", val_per_class=100,
    train_per_class=800, test_per_class=100,
    epochs=20, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((10, 0.1), (15, 0.01), (18, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10,
    aa_version="custom", aa_attacks=("apgd-ce", "apgd-t"), aa_per_class=30,
    aa_restarts=1, aa_targets=3, aa_iters=100, method_defaults=HAM,
))

# Seconds on a CPU, for tests.
register_preset(Protocol(
    dataset="svhn", preset="smoke", model="small_cnn", val_per_class=2,
    train_per_class=4, test_per_class=2,
    epochs=2, batch_size=16, lr=0.01, weight_decay=5e-4,
    lr_milestones=((1, 0.1),), finetune_lr=0.001,
    eps=8 / 255, alpha=4 / 255, train_steps=2, val_steps=2, eval_pgd_steps=2, eval_cw_steps=2,
    aa_version="custom", aa_attacks=("apgd-ce",), aa_per_class=1,
    aa_restarts=1, aa_targets=2, aa_iters=2, eval_batch_size=64, method_defaults=HAM,
))
