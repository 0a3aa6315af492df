"""One run of the protocol: fit a registered model on a split's train part
(validation for model selection only), score it on test, write the record.

The same code serves every task; the task spec says whether rows are cells
(classification) or (cell line, drug) pairs (regression).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import registry
from benchmarks.metrics import binary_metrics, classification_metrics, confusion, regression_metrics
from benchmarks.protocol import provenance, read_split, split_units, write_run, write_split
from benchmarks.tasks.data import CellData, PairData, pair_ids, read_response_table
from benchmarks.tasks.spec import Task, get_task, task_setting
from celllm.errors import InputError
from celllm.io import read_dataset

PARTS = ("train", "val", "test")


@dataclass
class TaskInputs:
    """The files of one dataset of a task: the .h5ad, and for drug response its pairs and drug features."""

    data: Path
    response: Path | None = None  # results/data/{dataset}.response.tsv
    drugs: Path | None = None  # results/features/{dataset}.drugs.pt

    @property
    def dataset(self) -> str:
        return Path(self.data).stem


def _split_items(task: Task, inputs: TaskInputs):
    """(ids, table) of the rows a split assigns: cells, or (cell line, drug) pairs."""
    if task.kind == "classification":
        adata = read_dataset(inputs.data, required_obs=[task.target])
        return adata.obs_names.astype(str).to_numpy(), adata
    if inputs.response is None:
        raise InputError(f"task '{task.name}' needs a drug-response table beside {inputs.data}")
    cell_lines = read_dataset(inputs.data)
    pairs = read_response_table(inputs.response, cell_lines)
    return pair_ids(pairs), (cell_lines, pairs)


def make_split(task_name: str, setting_name: str, seed: int, inputs: TaskInputs, out_path, fractions: dict | None = None) -> np.ndarray:
    """Draw and write the split file of one (task, dataset, setting, seed); `fractions` re-size the setting."""
    task = get_task(task_name)
    try:
        setting = task_setting(task_name, setting_name, fractions)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    ids, items = _split_items(task, inputs)
    if task.kind == "classification":
        units, strata = ids, items.obs[task.target].astype(str).to_numpy()
    else:
        pairs = items[1]
        units, strata = {"pair": ids, "cell_line": pairs["cell_line"], "drug": pairs["drug"]}[setting.unit], None
    split = split_units(units, seed, setting, strata)
    write_split(out_path, ids, split)
    return split


def _load_parts(task: Task, inputs: TaskInputs, split_path) -> dict:
    ids, items = _split_items(task, inputs)
    split = read_split(split_path, ids.tolist())
    if task.kind == "classification":
        labels = items.obs[task.target].astype(str).to_numpy()
        parts = {p: CellData(items[split == p].copy(), labels[split == p]) for p in PARTS}
    else:
        from benchmarks.drugs import DrugFeatures  # torch-geometric: only drug response needs it

        if inputs.drugs is None:
            raise InputError(f"task '{task.name}' needs drug features for {inputs.response}")
        cell_lines, pairs = items
        drugs = DrugFeatures.load(inputs.drugs)
        parts = {}
        for p in PARTS:
            chosen = pairs[split == p].reset_index(drop=True)
            lines = chosen["cell_line"].unique()
            parts[p] = PairData(chosen, cell_lines[lines].copy(), drugs)
    if len(parts["train"]) == 0 or len(parts["test"]) == 0:
        raise InputError(f"{split_path}: the split leaves no training or no test rows")
    return parts


def _score_classification(task: Task, model, test: CellData, predicted: np.ndarray) -> tuple[dict, pd.DataFrame, dict]:
    metrics = classification_metrics(test.labels, predicted)
    predictions = pd.DataFrame({"id": test.adata.obs_names.astype(str), "true": test.labels, "predicted": predicted})
    if task.positive is not None:
        # a ranking score for AUROC/AUPR: the positive class's probability, or the hard call
        score = (predicted == task.positive).astype(float)
        if hasattr(model, "predict_proba"):
            classes = [str(c) for c in model.classes_]
            if task.positive in classes:
                score = np.asarray(model.predict_proba(test))[:, classes.index(task.positive)]
        metrics.update(binary_metrics(test.labels, predicted, score, task.positive))
        predictions[f"score_{task.positive}"] = score
    classes, matrix = confusion(test.labels, predicted)
    return metrics, predictions, {"confusion": {"labels": classes, "matrix": matrix}}


def _score_regression(test: PairData, predicted: np.ndarray) -> tuple[dict, pd.DataFrame, dict]:
    metrics = regression_metrics(test.values, predicted, test.pairs["drug"].to_numpy())
    predictions = test.pairs[["cell_line", "drug"]].assign(true=test.values, predicted=predicted)
    return metrics, predictions, {}


def run_task(task_name: str, setting: str, inputs: TaskInputs, split_path, model_name: str, seed: int, out_dir,
             context: registry.ModelContext) -> dict:
    """Fit one registered model on train (+ validation), score it on test, write metrics.json and predictions.csv.

    The model runs with its declared options' defaults under the configured
    `context.options`, and the record carries those options, so two runs with
    different options are told apart by their records, not only by their folders.
    """
    task = get_task(task_name)
    spec = registry.get(model_name)
    if task_name not in spec.tasks:
        raise InputError(f"model '{model_name}' does not support task '{task_name}'")
    context = replace(context, options=spec.resolve_options(task_name, context.options))
    parts = _load_parts(task, inputs, split_path)

    np.random.seed(seed)  # for libraries that still read numpy's global state
    began = time.perf_counter()
    model = spec.factory(seed=seed, context=context)
    model.fit(parts["train"], parts["val"])
    predicted = np.asarray(model.predict(parts["test"]))
    if task.kind == "classification":
        metrics, predictions, extra = _score_classification(task, model, parts["test"], predicted.astype(str))
    else:
        metrics, predictions, extra = _score_regression(parts["test"], predicted.astype(float))
    wall = time.perf_counter() - began

    test = parts["test"]
    simulated = (test.adata if task.kind == "classification" else test.cell_lines).uns.get("simulated", False)
    record = {
        "task": task_name,
        "setting": setting,
        "dataset": inputs.dataset,
        "simulated": bool(simulated),
        "model": model_name,
        "kind": spec.kind,
        "seed": seed,
        **{f"n_{p}": len(parts[p]) for p in PARTS},
        "metrics": metrics,
        **extra,
        "options": context.options,
        "wall_time_s": wall,
        "provenance": provenance(context.checkpoint if spec.needs_checkpoint else None, context.options),
    }
    write_run(out_dir, record, predictions)
    return record
