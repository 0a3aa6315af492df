"""Baseline embedding: Harmony (Korsunsky et al. 2019, harmonypy) on the PCA baseline's components,
correcting for the dataset's donors; without donors it is the PCA embedding itself."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.models.pca import PCAEmbedding
from benchmarks.registry import register
from benchmarks.tasks import get_task


@register(
    "harmony",
    kind="baseline",
    colour="#fd8d3c",
    tasks=("embedding",),
    summary="Harmony on the 50 PCA components, donors as batches (PCA alone where a dataset has one donor)",
    reference="Korsunsky et al. 2019, Nat Methods (harmonypy); scib's integration baselines",
)
class HarmonyEmbedding(PCAEmbedding):
    def embed(self, data) -> np.ndarray:
        import harmonypy

        pcs = super().embed(data)
        batches = get_task("embedding").batches(data)
        if batches is None:
            return pcs
        corrected = np.asarray(
            harmonypy.run_harmony(pcs, pd.DataFrame({"batch": batches}), ["batch"], random_state=self.seed, verbose=False).Z_corr
        )
        return corrected if corrected.shape[0] == len(pcs) else corrected.T  # cells x components in every harmonypy version
