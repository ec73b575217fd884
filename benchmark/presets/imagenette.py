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

from benchmark.presets._paper import register_paper_presets

register_paper_presets(
    "imagenette", val_per_class=50, quick_train_per_class=750, quick_val_per_class=50,
    quick_test_per_class=100, quick_aa_per_class=30,
)
