"""Zero-shot embedding quality and batch integration (scib / cz-benchmarks style).

No model is trained on the dataset: each model gives an embedding of every cell
(`embed(data)`), which the run saves (embedding.npy, benchmarks.records) and scoring reads
back to score with benchmarks.embedding_metrics against the cell types and, where the
dataset has donors, the donors as batches (both saved in the run's predictions table). The only seed dependence is in
the metrics (Leiden, the kNN folds), so the seeds give their spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.embedding_metrics import embedding_metrics
from benchmarks.records import check_embedding
from benchmarks.tasks.data import CellData
from benchmarks.tasks.spec import NO_SPLIT, Setting, Task
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

    def run(self, model, parts: dict, seed: int) -> tuple[pd.DataFrame, dict]:
        """Every cell's embedding, kept in the dtype the model gives (scoring reads it as float64)."""
        data = parts["all"]
        X = check_embedding(model.embed(data), len(data), "the model's embedding")
        predictions = pd.DataFrame({"id": data.adata.obs_names.astype(str), "true": data.labels})
        batches = self.batches(data)
        if batches is not None:
            predictions["batch"] = batches
        return predictions, {"embedding": X}

    def score(self, predictions: pd.DataFrame, arrays: dict, seed: int) -> tuple[dict, dict]:
        X = np.asarray(arrays["embedding"], dtype=np.float64)
        batches = predictions["batch"].to_numpy() if "batch" in predictions else None
        metrics = embedding_metrics(X, predictions["true"].to_numpy(), batches, seed=seed)
        return metrics, {"embedding_dims": int(X.shape[1])}

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
    arrays=("embedding",),
)
