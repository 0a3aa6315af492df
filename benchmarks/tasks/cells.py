"""Tasks whose rows are single cells with one label each (annotation, drug sensitivity)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.metrics import binary_metrics, classification_metrics, confusion
from benchmarks.splits import read_split
from benchmarks.tasks.data import CellData
from benchmarks.tasks.spec import Task
from celllm.io import read_dataset


@dataclass(frozen=True)
class CellClassification(Task):
    def _cells(self, files: dict):
        return read_dataset(files["data"], required_obs=[self.target])

    def split_items(self, files: dict) -> tuple:
        adata = self._cells(files)
        ids = adata.obs_names.astype(str).to_numpy()
        strata = adata.obs[self.target].astype(str).to_numpy()
        return ids, {"cell": ids}, strata

    def load_parts(self, files: dict, split_path) -> dict:
        adata = self._cells(files)
        split = read_split(split_path, adata.obs_names.astype(str).tolist())
        labels = adata.obs[self.target].astype(str).to_numpy()
        return {p: CellData(adata[split == p].copy(), labels[split == p]) for p in self.parts}

    def predictions(self, model, test: CellData) -> pd.DataFrame:
        predicted = np.asarray(model.predict(test)).astype(str)
        predictions = pd.DataFrame({"id": test.adata.obs_names.astype(str), "true": test.labels, "predicted": predicted})
        if self.positive is not None:
            # a ranking score for AUROC/AUPR: the positive class's probability, or the hard call
            score = (predicted == self.positive).astype(float)
            if hasattr(model, "predict_proba"):
                classes = [str(c) for c in model.classes_]
                if self.positive in classes:
                    score = np.asarray(model.predict_proba(test), dtype=np.float64)[:, classes.index(self.positive)]
            predictions[self.score_column] = score
        return predictions

    @property
    def score_column(self) -> str:
        return f"score_{self.positive}"

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return (self.score_column,) if self.positive is not None else ()

    def score(self, predictions: pd.DataFrame, arrays: dict, seed: int) -> tuple[dict, dict]:
        truth, predicted = predictions["true"].to_numpy(), predictions["predicted"].to_numpy()
        metrics = classification_metrics(truth, predicted)
        if self.positive is not None:
            metrics.update(binary_metrics(truth, predicted, predictions[self.score_column].to_numpy(), self.positive))
        classes, matrix = confusion(truth, predicted)
        return metrics, {"confusion": {"labels": classes, "matrix": matrix}}

    def is_simulated(self, parts: dict) -> bool:
        return bool(parts["test"].adata.uns.get("simulated", False))
