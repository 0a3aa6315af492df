"""One run of the protocol: fit a registered model on a split's train part
(validation for model selection only), score it on test, write the record.

The same code serves every task: the task (benchmarks/tasks/) says what its rows
are, what a model sees and how predictions are scored. `files` maps a task's
file roles (`data`, and for drug response `response`, `drugs`) to paths.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from benchmarks import registry
from benchmarks.protocol import provenance, split_units, write_run, write_split
from benchmarks.tasks import get_task, task_setting
from celllm.errors import InputError


def make_split(task_name: str, setting_name: str, seed: int, files: dict, out_path, fractions: dict | None = None) -> np.ndarray:
    """Draw and write the split file of one (task, dataset, setting, seed); `fractions` re-size the setting."""
    task = get_task(task_name)
    try:
        setting = task_setting(task_name, setting_name, fractions)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    ids, units, strata = task.split_items(files)
    split = split_units(units[setting.unit], seed, setting, strata)
    write_split(out_path, ids, split)
    return split


def run_task(
    task_name: str, setting: str, files: dict, split_path, model_name: str, seed: int, out_dir, context: registry.ModelContext
) -> dict:
    """Fit one registered model on train (+ validation), score it on test, write metrics.json and predictions.csv.

    The model runs with its declared options' defaults under the configured
    `context.options`, and the record carries those options, so two runs with
    different options are told apart by their records, not only by their folders.
    """
    task = get_task(task_name)
    spec = registry.get(model_name)
    if not spec.supports(task_name):
        raise InputError(f"model '{model_name}' does not support task '{task_name}'")
    context = replace(context, options=spec.resolve_options(task_name, context.options))
    parts = task.load_parts(files, split_path)
    if task.needs_split and (len(parts["train"]) == 0 or len(parts["test"]) == 0):
        raise InputError(f"{split_path}: the split leaves no training or no test rows")

    np.random.seed(seed)  # for libraries that still read numpy's global state
    began = time.perf_counter()
    model = spec.factory(seed=seed, context=context)
    metrics, predictions, extra = task.evaluate(model, parts, seed)
    wall = time.perf_counter() - began

    record = {
        "task": task_name,
        "setting": setting,
        "dataset": task.dataset(files),
        "simulated": task.is_simulated(parts),
        "model": model_name,
        "kind": spec.kind,
        "seed": seed,
        **{f"n_{p}": len(parts[p]) for p in parts},
        "metrics": metrics,
        **extra,
        "options": context.options,
        "wall_time_s": wall,
        "provenance": provenance(context.checkpoint if spec.needs_checkpoint else None, context.options),
    }
    write_run(out_dir, record, predictions)
    return record
