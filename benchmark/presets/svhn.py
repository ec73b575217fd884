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

from benchmark.presets._paper import register_paper_presets

# lr 0.01 (the literature's SVHN setting) and HAM's M = 5 on SVHN, as data for every preset.
register_paper_presets(
    "svhn", val_per_class=300, quick_train_per_class=800, quick_val_per_class=100,
    quick_test_per_class=100, quick_aa_per_class=30, lr=0.01, smoke_lr=0.01,
    method_defaults={"ham": {"drop_step": 5}},
)
