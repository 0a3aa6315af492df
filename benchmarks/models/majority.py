"""Control: always predict the most frequent training label."""

from collections import Counter

import numpy as np

from benchmarks.registry import register


@register(
    "majority",
    kind="control",
    colour="#525252",
    tasks=("annotation", "drug_sensitivity"),
    summary="predicts the most frequent training label",
)
class MajorityClass:
    def __init__(self, seed, context):
        self.label = None

    def fit(self, train, val):
        self.label = Counter(train.labels).most_common(1)[0][0]

    def predict(self, data):
        return np.full(len(data), self.label)
