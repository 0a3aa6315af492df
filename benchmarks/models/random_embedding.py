"""Control: a random embedding (50 standard-normal dimensions per cell, drawn from the seed), the floor of every metric."""

from __future__ import annotations

import numpy as np

from benchmarks.registry import register


@register(
    "random_embedding",
    kind="control",
    colour="#737373",
    tasks=("embedding",),
    summary="50 standard-normal dimensions per cell, independent of expression",
)
class RandomEmbedding:
    def __init__(self, seed, context):
        self.seed = seed

    def embed(self, data) -> np.ndarray:
        return np.random.default_rng(self.seed).normal(size=(len(data), 50))
