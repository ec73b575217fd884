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

from benchmark.presets._paper import register_paper_presets

# quick: 100 training images per class for 16 epochs; 10 test and 3 AutoAttack points per class.
register_paper_presets(
    "cifar100", val_per_class=30, quick_train_per_class=100, quick_val_per_class=10,
    quick_test_per_class=10, quick_aa_per_class=3, quick_epochs=16,
    smoke_per_class=(1, 2, 1), smoke_batch_size=32,
)
