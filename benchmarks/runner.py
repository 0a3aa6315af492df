"""One run of the protocol, in two steps that meet only through files (benchmarks.records):

- `run_model`: fit a registered model on a split's train part (validation for model
  selection only), predict test (or embed, zero-shot), write predictions.csv, the task's
  arrays (embedding.npy) and run.json. No metric is computed here.
- `score_run`: read those files back and write metrics.json. Scoring never builds a model, so
  a changed metric re-scores the saved predictions without re-running any model.

`run_task` does both, for a caller that wants one run's record. The same code serves every
task: the task (benchmarks/tasks/) says what its rows are, what a model sees, what a run
writes and how its files are scored. `files` maps a task's file roles (`data`, and for drug
response `response`, `drugs`) to paths.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import registry
from benchmarks.records import RUN_RECORD, provenance, read_json, read_run, write_metrics, write_run
from benchmarks.splits import split_units, write_split
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


def run_model(
    task_name: str, setting: str, files: dict, split_path, model_name: str, seed: int, out_dir, context: registry.ModelContext
) -> dict:
    """Fit one registered model on train (+ validation) and predict test, or embed (zero-shot); write
    predictions.csv, the task's arrays and run.json (benchmarks.records). Returns the run record.

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
    predictions, arrays = task.run(model, parts, seed)
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
        "options": context.options,
        "wall_time_s": wall,  # fitting and predicting (or embedding); scoring is not timed here
        "provenance": provenance(context.checkpoint if spec.needs_checkpoint else None, context.options),
    }
    write_run(out_dir, record, predictions, arrays)
    return record


def score_run(run_dir) -> dict:
    """Score one finished model run from its files alone and write its metrics.json; returns the whole record."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / RUN_RECORD)
    if "task" not in record or "seed" not in record:
        raise InputError(f"{run_dir / RUN_RECORD}: not a run record (it names no task or seed)")
    task = get_task(record["task"])
    _, predictions, arrays = read_run(run_dir, task.numeric_columns, task.arrays)
    metrics, extra = task.score(predictions, arrays, int(record["seed"]))
    return write_metrics(run_dir, record, metrics, extra)


def score_runs(run_dirs) -> list[dict]:
    """Score many finished runs in one process (the workflow's one scoring job per task and dataset)."""
    return [score_run(run_dir) for run_dir in run_dirs]


# The code that turns a run's files into its metrics, besides the task's own scoring classes.
SCORING_MODULES = ("benchmarks.metrics", "benchmarks.embedding_metrics", "benchmarks.records")


def scoring_sources(task_name: str) -> list[Path]:
    """The source files whose code scores a run of `task_name`: the metric modules, the reader of run
    files, the task's kind (its `score`, up the class chain) and the task's own file (its positive
    class, its target). Model code is not among them, and the model runs do not depend on these."""
    task = get_task(task_name)
    modules = [importlib.import_module(name) for name in SCORING_MODULES]
    modules += [sys.modules[cls.__module__] for cls in type(task).__mro__ if cls.__module__.startswith("benchmarks.")]
    modules += [m for name, m in list(sys.modules.items()) if name.startswith("benchmarks.tasks.") and getattr(m, "TASK", None) is task]
    return sorted({Path(m.__file__).resolve() for m in modules})


def scoring_code_sha256(task_name: str) -> str:
    """SHA-256 of the contents of `scoring_sources` (named by file, not by where the project lies):
    the scoring rule's params, so that a changed metric re-scores every run and re-runs no model."""
    digest = hashlib.sha256()
    for path in scoring_sources(task_name):
        digest.update(f"{path.parent.name}/{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_task(
    task_name: str, setting: str, files: dict, split_path, model_name: str, seed: int, out_dir, context: registry.ModelContext
) -> dict:
    """`run_model` then `score_run`: one run's files and its metrics.json. Returns the scored record."""
    run_model(task_name, setting, files, split_path, model_name, seed, out_dir, context)
    return score_run(out_dir)
