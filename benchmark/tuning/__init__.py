"""Equal-budget tuning: every method's search space sampled with the same budget on the first
seed, configurations selected on validation only, the selected one run on every seed."""
