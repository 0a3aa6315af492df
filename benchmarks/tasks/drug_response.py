"""Cell-line drug response (GDSC, CCLE): ln IC50 of (cell line, drug) pairs, warm and cold start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.metrics import regression_metrics
from benchmarks.splits import read_split
from benchmarks.tasks.data import PairData, pair_ids, read_response_table
from benchmarks.tasks.spec import Setting, Task
from celllm.errors import InputError
from celllm.io import read_dataset


@dataclass(frozen=True)
class DrugResponse(Task):
    """Rows are (cell line, drug) pairs of a response table; a model predicts ln IC50."""

    def _pairs(self, files: dict):
        if not files.get("response"):
            raise InputError(f"task '{self.name}' needs a drug-response table beside {files['data']}")
        cell_lines = read_dataset(files["data"])
        return cell_lines, read_response_table(files["response"], cell_lines)

    def split_items(self, files: dict) -> tuple:
        _, pairs = self._pairs(files)
        ids = pair_ids(pairs)
        return ids, {"pair": ids, "cell_line": pairs["cell_line"], "drug": pairs["drug"]}, None

    def load_parts(self, files: dict, split_path) -> dict:
        from benchmarks.drugs import DrugFeatures  # torch-geometric: only this task needs it

        if not files.get("drugs"):
            raise InputError(f"task '{self.name}' needs drug features for {files.get('response')}")
        cell_lines, pairs = self._pairs(files)
        split = read_split(split_path, pair_ids(pairs).tolist())
        drugs = DrugFeatures.load(files["drugs"])
        parts = {}
        for p in self.parts:
            chosen = pairs[split == p].reset_index(drop=True)
            parts[p] = PairData(chosen, cell_lines[chosen["cell_line"].unique()].copy(), drugs)
        return parts

    def predictions(self, model, test: PairData) -> pd.DataFrame:
        predicted = np.asarray(model.predict(test)).astype(float)
        return test.pairs[["cell_line", "drug"]].assign(true=test.values, predicted=predicted)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return ("true", "predicted")

    def score(self, predictions: pd.DataFrame, arrays: dict, seed: int) -> tuple[dict, dict]:
        return regression_metrics(predictions["true"], predictions["predicted"], predictions["drug"].to_numpy()), {}

    def is_simulated(self, parts: dict) -> bool:
        return bool(parts["test"].cell_lines.uns.get("simulated", False))


TASK = DrugResponse(
    "drug_response",
    target="ln_ic50",
    settings={
        "warm": Setting(val=0.1, test=0.1, unit="pair", stratify=False, label="warm: unseen cell line–drug pairs"),
        "cold_cell": Setting(val=0.1, test=0.1, unit="cell_line", stratify=False, label="cold cell: unseen cell lines"),
        # beyond the paper; a larger test share, since drug panels are small
        "cold_drug": Setting(val=0.15, test=0.2, unit="drug", stratify=False, label="cold drug: unseen drugs"),
    },
    headline=["rmse", "pearson", "spearman", "per_drug_pearson", "r2"],
    figure_metrics=["pearson", "per_drug_pearson", "rmse"],
    title="Drug response (ln IC50)",
    summary="cell-line drug response, ln IC50 (GDSC, CCLE)",
    figures=("scatter",),
    split_inputs=("data", "response"),
    run_inputs=("data", "response", "drugs"),
)
