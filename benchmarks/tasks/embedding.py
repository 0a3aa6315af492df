"""Zero-shot embedding quality and batch integration (scib / cz-benchmarks style).

No model is trained on the dataset: each model gives an embedding of every cell
(`embed(data)`), which the run saves (embedding.npy, benchmarks.records) and scoring reads
back to score with benchmarks.embedding_metrics against the cell types and, where the
dataset has donors, the donors as batches (both saved in the run's predictions table). The only seed dependence is in
the metrics (Leiden, the kNN folds), so the seeds give their spread.

Beside them, the embedding's geometry and what it encodes (benchmarks.embedding_geometry):
isotropy (mean cosine of random pairs, alignment and uniformity), the directions it uses
(participation ratio, components for 90% of the variance), the kNN F1 of every other
annotation column the dataset has (tissue, donor, sample), and how much of it is
sequencing depth. The run saves what these need beside the labels: the annotation
columns and each cell's genes detected and total counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.embedding_geometry import depth_correlation, depth_of, encoded_labels, geometry
from benchmarks.embedding_metrics import embedding_metrics
from benchmarks.records import check_embedding
from benchmarks.tasks.data import CellData
from benchmarks.tasks.spec import NO_SPLIT, Setting, Task
from celllm.io import read_dataset

# .obs columns whose encoding the geometry reports, besides the target (kNN F1 of each the dataset has)
ANNOTATIONS = ("tissue", "donor", "sample")
DEPTH = ("n_genes", "total_counts")  # each cell's genes detected and total counts


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
        obs = data.adata.obs
        for column in ANNOTATIONS:
            if column in obs and column != self.target:
                predictions[f"annotation_{column}"] = obs[column].astype(str).to_numpy()
        predictions["n_genes"], predictions["total_counts"] = depth_of(data.adata.X)
        return predictions, {"embedding": X}

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return DEPTH

    def score(self, predictions: pd.DataFrame, arrays: dict, seed: int) -> tuple[dict, dict]:
        X = np.asarray(arrays["embedding"], dtype=np.float64)
        batches = predictions["batch"].to_numpy() if "batch" in predictions else None
        labels = predictions["true"].to_numpy()
        metrics = embedding_metrics(X, labels, batches, seed=seed)
        metrics |= geometry(X, labels, seed=seed)
        others = {c: predictions[f"annotation_{c}"].to_numpy() for c in ANNOTATIONS if f"annotation_{c}" in predictions}
        metrics |= encoded_labels(X, others, seed=seed)  # the target's kNN F1 is knn_macro_f1
        if set(DEPTH) <= set(predictions):
            metrics |= depth_correlation(X, predictions["n_genes"].to_numpy(), predictions["total_counts"].to_numpy())
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
    figures=("umap", "geometry"),
    detail_tables=(
        (
            "Geometry and what the embedding encodes",
            (
                "mean_cosine",
                "uniformity",
                "participation_ratio",
                "components_90",
                "knn_f1_tissue",
                "knn_f1_donor",
                "knn_f1_sample",
                "depth_r_genes",
            ),
        ),
    ),
    summary_metrics=("overall", "knn_macro_f1", "ari", "mean_cosine", "participation_ratio"),
    split_inputs=(),
    arrays=("embedding",),
)
