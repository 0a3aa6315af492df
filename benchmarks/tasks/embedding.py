"""Zero-shot embedding quality and batch integration (scib / cz-benchmarks style).

No model is trained on the dataset: each model gives an embedding of every cell
(`embed(data)`), scored by benchmarks.embedding_metrics against the cell types and,
where the dataset has donors, the donors as batches. The only seed dependence is in
the metrics (Leiden, the kNN folds), so the seeds give their spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.embedding_metrics import embedding_metrics
from benchmarks.tasks.data import CellData
from benchmarks.tasks.spec import NO_SPLIT, Setting, Task
from celllm.errors import InputError
from celllm.io import read_dataset


@dataclass(frozen=True)
class ZeroShotEmbedding(Task):
    batch: str = "donor"  # the .obs column of batches, used where a dataset has two or more

    def load_parts(self, files: dict, split_path=None) -> dict:
        adata = read_dataset(files["data"], required_obs=[self.target])
        return {"all": CellData(adata, adata.obs[self.target].astype(str).to_numpy())}

    def batches(self, data: CellData) -> np.ndarray | None:
        if self.batch not in data.adata.obs or data.adata.obs[self.batch].nunique() < 2:
            return None
        return data.adata.obs[self.batch].astype(str).to_numpy()

    def evaluate(self, model, parts: dict, seed: int) -> tuple[dict, pd.DataFrame, dict]:
        data = parts["all"]
        X = np.asarray(model.embed(data), dtype=np.float64)
        if X.ndim != 2 or len(X) != len(data):
            raise InputError(f"the model's embedding has shape {X.shape}; expected one row per cell ({len(data)})")
        batches = self.batches(data)
        metrics = embedding_metrics(X, data.labels, batches, seed=seed)
        predictions = pd.DataFrame({"id": data.adata.obs_names.astype(str), "true": data.labels})
        if batches is not None:
            predictions["batch"] = batches
        return metrics, predictions, {"embedding_dims": int(X.shape[1])}

    def is_simulated(self, parts: dict) -> bool:
        return bool(parts["all"].adata.uns.get("simulated", False))


TASK = ZeroShotEmbedding(
    "embedding",
    target="cell_type",
    settings={"zero_shot": Setting(val=0.0, test=0.0, unit=NO_SPLIT, label="zero-shot: no training on the dataset")},
    headline=["overall", "bio", "ari", "nmi", "asw_label", "knn_macro_f1", "batch", "asw_batch", "ilisi"],
    figure_metrics=["overall", "ari", "nmi", "asw_label", "knn_macro_f1", "ilisi"],
    title="Zero-shot embeddings: cell types kept apart, donors mixed",
    summary="zero-shot cell embedding quality and batch integration (Zheng68k, Baron)",
    figures=("umap",),
    split_inputs=(),
)
