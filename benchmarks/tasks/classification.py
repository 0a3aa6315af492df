"""Cell-level classification tasks: one label column, stratified splits, accuracy and F1.

Cell type annotation is one; single-cell drug sensitivity will be another.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import registry
from benchmarks.metrics import classification_metrics, confusion
from benchmarks.protocol import provenance, read_split, write_run
from benchmarks.tasks.data import TaskData
from celllm.errors import InputError
from celllm.io import read_dataset

# task name -> the .obs column it predicts
CLASSIFICATION_TASKS = {"annotation": "cell_type"}
HEADLINE_METRICS = ["accuracy", "macro_f1"]


def label_column(task: str) -> str:
    if task not in CLASSIFICATION_TASKS:
        raise InputError(f"unknown classification task '{task}' (known: {', '.join(CLASSIFICATION_TASKS)})")
    return CLASSIFICATION_TASKS[task]


def run_classification(task: str, dataset_path, split_path, model_name: str, seed: int, out_dir, context: registry.ModelContext, setting: str = "standard", config=None) -> dict:
    """Fit one registered model on train (+ validation for model selection), score it on test."""
    column = label_column(task)
    adata = read_dataset(dataset_path, required_obs=[column])
    split = read_split(split_path, adata.obs_names.astype(str).tolist())
    labels = adata.obs[column].astype(str).to_numpy()
    parts = {name: TaskData(adata[split == name].copy(), labels[split == name]) for name in ("train", "val", "test")}
    if len(parts["train"]) == 0 or len(parts["test"]) == 0:
        raise InputError(f"{split_path}: the split leaves no training or no test cells")

    spec = registry.get(model_name)
    if task not in spec.tasks:
        raise InputError(f"model '{model_name}' does not support task '{task}'")
    np.random.seed(seed)  # for libraries that still read numpy's global state
    began = time.perf_counter()
    model = spec.factory(seed=seed, context=context)
    model.fit(parts["train"], parts["val"])
    predicted = np.asarray(model.predict(parts["test"])).astype(str)
    wall = time.perf_counter() - began

    test = parts["test"]
    classes, matrix = confusion(test.labels, predicted)
    record = {
        "task": task,
        "setting": setting,
        "dataset": Path(dataset_path).stem,
        "simulated": bool(adata.uns.get("simulated", False)),
        "model": model_name,
        "kind": spec.kind,
        "seed": seed,
        "n_train": len(parts["train"]),
        "n_val": len(parts["val"]),
        "n_test": len(test),
        "metrics": classification_metrics(test.labels, predicted),
        "confusion": {"labels": classes, "matrix": matrix},
        "wall_time_s": wall,
        "provenance": provenance(context.checkpoint if spec.needs_checkpoint else None, config),
    }
    predictions = pd.DataFrame({"id": test.adata.obs_names.astype(str), "true": test.labels, "predicted": predicted})
    write_run(out_dir, record, predictions)
    return record
