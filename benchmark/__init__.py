"""fairbench: one protocol and one evaluator for robust-fairness methods of adversarial training."""

__version__ = "0.1.0"
