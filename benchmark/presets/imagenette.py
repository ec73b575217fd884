"""Imagenette presets (160px images resized to 32x32; L-inf eps 8/255, alpha 2/255).

Imagenette (imagenette2-160) has 9469 training images, roughly 860-990 per class, so the quick
preset's 750 per class fit after the 50-per-class validation split (a copy with fewer gets the
one-line "class c has n examples" error). Its test set is the official `val` folder (3925
images, roughly 350-420 per class).
GPU cost estimated as in `benchmark.presets.cifar10` (FLOP counts of PreAct ResNet-18 at 32x32,
5 TFLOP/s sustained fp32 assumed; an estimate, not a measurement):
quick: 7500 train images x 25.5 GFLOP = 191 TFLOP/epoch -> 38 s; x 20 epochs x 3.15 (core
methods) -> 40 min; validation 500 images -> 2.4 s/epoch x 58 epochs -> 2.5 min; evaluation
1000 test + 300 AutoAttack points -> 56 s x 8 checkpoints -> 7.5 min. Total ~50 min.
full: ~8970 training images: 229 TFLOP/epoch -> 46 s; ~1.5 h per PGD-AT run, ~5 h for the core
methods; standard AutoAttack on 3925 points ~40% of the CIFAR-10 cost (~1.2 h per checkpoint).
smoke: `small_cnn`; its numbers mean nothing.
"""

from benchmark.protocols import Protocol, register_preset

THREAT = dict(eps=8 / 255, alpha=2 / 255, train_steps=10)

register_preset(Protocol(
    dataset="imagenette", preset="full", model="preact_resnet18", val_per_class=50,
    epochs=120, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((60, 0.1), (90, 0.01), (110, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10, aa_version="standard",
))

# One modest GPU, about an hour (same shape as CIFAR-10 quick on 750 images per class).
register_preset(Protocol(
    dataset="imagenette", preset="quick", model="preact_resnet18", val_per_class=50,
    train_per_class=750, test_per_class=100,
    epochs=20, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
    lr_milestones=((10, 0.1), (15, 0.01), (18, 0.005)), finetune_lr=0.001,
    **THREAT, val_steps=10,
    aa_version="custom", aa_attacks=("apgd-ce", "apgd-t"), aa_per_class=30,
    aa_restarts=1, aa_targets=3, aa_iters=100,
))

# Seconds on a CPU, for tests.
register_preset(Protocol(
    dataset="imagenette", preset="smoke", model="small_cnn", val_per_class=2,
    train_per_class=4, test_per_class=2,
    epochs=2, batch_size=16, lr=0.05, weight_decay=5e-4,
    lr_milestones=((1, 0.1),), finetune_lr=0.001,
    eps=8 / 255, alpha=4 / 255, train_steps=2, val_steps=2, eval_pgd_steps=2, eval_cw_steps=2,
    aa_version="custom", aa_attacks=("apgd-ce",), aa_per_class=1,
    aa_restarts=1, aa_targets=2, aa_iters=2, eval_batch_size=64,
))
