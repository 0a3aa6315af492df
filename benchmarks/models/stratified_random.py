"""Control: random labels drawn with the training class frequencies (seeded)."""

import numpy as np

from benchmarks.registry import register


@register(
    "stratified_random",
    kind="control",
    colour="#969696",
    tasks=("annotation", "drug_sensitivity"),
    summary="random labels with the training class frequencies",
)
class StratifiedRandom:
    def __init__(self, seed, context):
        self.rng = np.random.default_rng(seed)

    def fit(self, train, val):
        self.classes, counts = np.unique(train.labels, return_counts=True)
        self.frequencies = counts / counts.sum()

    def predict(self, data):
        return self.rng.choice(self.classes, size=len(data), p=self.frequencies)
