"""The files a run leaves behind, and their provenance.

One folder per (task, dataset, setting, model, seed), results/runs/{task}/{dataset}/{setting}/{model}/seed{n}/:

- `predictions.csv`: one row per scored item (the test rows; every cell for a zero-shot task):
  its ids, its truth from the data, what the model gave (a label, the positive class's
  probability, a value). Floats are written in full (shortest round-trip text) and read back
  exactly, so scoring from the file gives the numbers scoring in memory gives.
- an array per declared name (`embedding.npy` for the zero-shot embedding task): one row per row of
  predictions.csv, in the dtype the model returned.
- `run.json`: the run record without metrics: task, setting, dataset, simulated, model, kind,
  seed, split sizes, options, wall time and provenance. The run job writes it last, so it
  marks a finished run.
- `metrics.json`: the run record with `metrics` (and what scoring adds: a confusion matrix, the
  embedding's width), written by scoring (benchmarks.runner.score_run) from the files above;
  tables, the summary and the confusion figure read it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

import celllm
from celllm.errors import InputError
from celllm.outputs import atomic_path

RUN_RECORD = "run.json"
PREDICTIONS = "predictions.csv"
SCORED_RECORD = "metrics.json"


def array_file(name: str) -> str:
    """The file of a run's array `name` (embedding -> embedding.npy)."""
    return f"{name}.npy"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_hash(config) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def provenance(checkpoint=None, config=None) -> dict:
    from celllm.checkpoint import checkpoint_hash

    return {
        "package_version": celllm.__version__,
        "git_commit": _git_commit(),
        "checkpoint_sha256": checkpoint_hash(checkpoint) if checkpoint else None,
        "config_sha256": config_hash(config or {}),
    }


def check_embedding(X, n_rows: int, source: str) -> np.ndarray:
    """`X` as an array if it is a (cells x dimensions) matrix with one row per cell; else InputError naming
    `source` (the model, or the file it was read from). The one check of an embedding's shape: the run,
    scoring and the UMAP figure call it."""
    X = np.asarray(X)
    if X.ndim != 2 or len(X) != n_rows:
        raise InputError(f"{source} has shape {X.shape}; expected one row per cell ({n_rows})")
    return X


def write_run(out_dir, record: dict, predictions: pd.DataFrame, arrays: dict | None = None) -> None:
    """A model run's files: predictions.csv, its arrays (.npy), then run.json, which marks a finished run."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / PREDICTIONS) as tmp:
        predictions.to_csv(tmp, index=False)  # no float_format: floats keep every digit (shortest round-trip repr)
    for name, array in (arrays or {}).items():
        with atomic_path(out_dir / array_file(name)) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(array), allow_pickle=False)
    with atomic_path(out_dir / RUN_RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=float) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable run record ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: a run record must be a JSON object")
    return record


def read_predictions(path, numeric=()) -> pd.DataFrame:
    """predictions.csv as written: every column as text (a label 'NA' stays 'NA'), `numeric` columns
    parsed as float64 exactly (Python's correctly rounded parse of the written shortest repr)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable predictions file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in numeric if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in numeric:
        try:
            frame[column] = np.array([float(v) if v != "" else np.nan for v in frame[column]], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"{path}: column '{column}' holds a value that is not a number ({exc})") from None
    return frame


def read_array(path, n_rows: int | None = None) -> np.ndarray:
    """A run's array (.npy, no pickles), checked to have `n_rows` rows where given."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    return array if n_rows is None else check_embedding(array, n_rows, f"{path}: the array")


def read_run(run_dir, numeric=(), arrays=()) -> tuple[dict, pd.DataFrame, dict]:
    """(run record, predictions, arrays by name) of a finished model run."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / RUN_RECORD)
    predictions = read_predictions(run_dir / PREDICTIONS, numeric)
    return record, predictions, {name: read_array(run_dir / array_file(name), len(predictions)) for name in arrays}


def write_metrics(out_dir, record: dict, metrics: dict, extra: dict) -> dict:
    """metrics.json: the run record with `metrics` and scoring's `extra` fields, in the record's order
    (they come before the options, wall time and provenance). Returns the whole record."""
    keys = list(record)
    at = keys.index("options") if "options" in keys else len(keys)
    scored = {**{k: record[k] for k in keys[:at]}, "metrics": metrics, **extra, **{k: record[k] for k in keys[at:]}}
    with atomic_path(Path(out_dir) / SCORED_RECORD) as tmp:
        tmp.write_text(json.dumps(scored, indent=2, default=float) + "\n")
    return scored
