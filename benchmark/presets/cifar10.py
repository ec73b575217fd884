"""CIFAR-10 presets (L-inf eps 8/255, alpha 2/255). The GPU-cost method of every 32x32 preset.

How the GPU times below were estimated (an estimate, not a measurement; no GPU was available):
- FLOPs of PreAct ResNet-18 on one 32x32 image, counted with `torch.utils.flop_counter`:
  forward F = 1.11 GFLOP; attack step (forward + gradient w.r.t. the input) = 2.22 GFLOP;
  training step (forward + backward incl. weight gradients) = 3.33 GFLOP.
- PGD-AT with PGD-10 per training image: 10 x 2.22 + 3.33 = 25.5 GFLOP. TRADES ~1.2x that
  (clean and adversarial forward/backward), HAM trains 70/120 of the epochs (warm start from
  PGD-AT at 50/120) on at most the same work, DAFA the last 41/110 at TRADES cost, FAAL 2 epochs
  of PGD-AT. So `make bench` (core methods: pgd_at, trades, ham, trades_dafa, faal; one seed)
  ~ 3.25 PGD-AT runs of training (3.4 on quick, where FAAL's 2 epochs are 2/20).
- Validation per epoch (PGD-10): 24.4 GFLOP per image. Evaluation per checkpoint (clean,
  PGD-20, CW-30): 114 GFLOP per image; custom AutoAttack (APGD-CE 100 iters + APGD-T 3 targets
  x 100 iters on the ~half still robust): ~555 GFLOP per point. 5 methods x (best, last) = 10
  evaluated checkpoints.
- Throughput assumption: 5 TFLOP/s sustained in fp32 (amp off, the default), i.e. a modest
  desktop GPU (RTX 3060/2080 class) at ~40% of its peak on these small convolutions. A T4 is
  about half as fast; a recent GPU with `--set amp=true` several times faster. Data loading is
  on-device tensor slicing, so it is ignored.

quick (8000 train images, 20 epochs; 1000 val, 1000 test, 300 AutoAttack points):
training 8000 x 25.5 GFLOP = 204 TFLOP/epoch -> 41 s; x 20 epochs x 3.4 -> 46 min;
validation 1000 x 24.4 GFLOP -> 5 s/epoch x 62 epochs -> 5 min; evaluation (114 + 167 TFLOP per
checkpoint) -> 56 s x 10 -> 9.5 min. Total ~61 min: about an hour per `make bench`.
full (47000 train images, 120 epochs): 1.2 PFLOP/epoch -> 4 min; one PGD-AT run ~8 h, the core
methods ~26 h; standard AutoAttack on 10000 points is dominated by Square (5000 queries) and
FAB-T: roughly 50 PFLOP, ~3 h per checkpoint at the same rate.
smoke: `small_cnn` (3x32x32 input) instead of PreAct ResNet-18, which takes ~1 s per batch step
on the 2-core CPU test machine; the smoke numbers mean nothing anyway.
"""

from benchmark.presets._paper import register_paper_presets

register_paper_presets(
    "cifar10", val_per_class=300, quick_train_per_class=800, quick_val_per_class=100,
    quick_test_per_class=100, quick_aa_per_class=30,
)
