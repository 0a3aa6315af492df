"""Tasks whose rows are single cells with one label each (annotation, drug sensitivity)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.metrics import binary_metrics, classification_metrics, confusion
from benchmarks.protocol import read_split
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

    def score(self, model, test: CellData, predicted) -> tuple[dict, pd.DataFrame, dict]:
        predicted = np.asarray(predicted).astype(str)
        metrics = classification_metrics(test.labels, predicted)
        predictions = pd.DataFrame({"id": test.adata.obs_names.astype(str), "true": test.labels, "predicted": predicted})
        if self.positive is not None:
            # a ranking score for AUROC/AUPR: the positive class's probability, or the hard call
            score = (predicted == self.positive).astype(float)
            if hasattr(model, "predict_proba"):
                classes = [str(c) for c in model.classes_]
                if self.positive in classes:
                    score = np.asarray(model.predict_proba(test))[:, classes.index(self.positive)]
            metrics.update(binary_metrics(test.labels, predicted, score, self.positive))
            predictions[f"score_{self.positive}"] = score
        classes, matrix = confusion(test.labels, predicted)
        return metrics, predictions, {"confusion": {"labels": classes, "matrix": matrix}}

    def is_simulated(self, parts: dict) -> bool:
        return bool(parts["test"].adata.uns.get("simulated", False))
