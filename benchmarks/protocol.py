"""The protocol every task shares: split files, run records and their provenance."""

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

SPLITS = ("train", "val", "test", "unused")


def stratified_split(labels, seed: int, val: float = 0.1, test: float = 0.2, train: float | None = None) -> np.ndarray:
    """Assign each item to train/val/test (or unused), class by class, deterministically from `seed`.

    Each class gives round(test * n) items to test and round(val * n) to
    validation, at least one each when it has three or more, so rare classes
    appear in every split. With `train=None` the rest trains; with a fraction
    (few-shot) round(train * n) of the rest train, at least one, and the others
    are "unused". Test and validation items depend only on (labels, seed, val,
    test), so a few-shot setting is tested on the same items as the full one.
    """
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(seed)
    split = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n = len(members)
        n_test = max(round(test * n), 1 if n >= 3 else 0)
        n_val = max(round(val * n), 1 if n >= 3 else 0)
        rest = members[n_test + n_val :]
        n_train = len(rest) if train is None else min(len(rest), max(round(train * n), 1))
        split[members[:n_test]] = "test"
        split[members[n_test : n_test + n_val]] = "val"
        split[rest[:n_train]] = "train"
        split[rest[n_train:]] = "unused"
    return split.astype(str)


def split_units(units, seed: int, setting, strata=None) -> np.ndarray:
    """The split of each item when whole units are drawn: cells, pairs, cell lines or drugs.

    `units` names the unit of each item (a cell line for cold-cell, a drug for
    cold-drug, the item itself otherwise); every item of a unit lands in the
    same split. `strata` (one label per item, constant within a unit) keeps
    class proportions when the setting stratifies.
    """
    units = np.asarray(units).astype(str)
    names, first, inverse = np.unique(units, return_index=True, return_inverse=True)
    labels = np.asarray(strata).astype(str)[first] if (setting.stratify and strata is not None) else np.zeros(len(names), dtype=str)
    per_unit = stratified_split(labels, seed, val=setting.val, test=setting.test, train=setting.train)
    return per_unit[inverse]


def write_split(path, ids, split) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame({"id": ids, "split": split}).to_csv(tmp, sep="\t", index=False)


def read_split(path, ids) -> np.ndarray:
    """The split of each id, in the order of `ids`; every id must be listed."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: split file not found")
    table = pd.read_csv(path, sep="\t", dtype=str)
    if list(table.columns) != ["id", "split"]:
        raise InputError(f"{path}: expected columns id, split")
    if not table["split"].isin(SPLITS).all():
        raise InputError(f"{path}: split values must be train, val, test or unused")
    mapping = dict(zip(table["id"], table["split"]))
    missing = [i for i in ids if i not in mapping]
    if missing:
        raise InputError(f"{path}: {len(missing)} ids of the dataset are not in the split (for example '{missing[0]}')")
    return np.array([mapping[i] for i in ids])


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


def write_run(out_dir, record: dict, predictions: pd.DataFrame) -> None:
    """metrics.json and predictions.csv of one run; metrics.json is written last, so it marks a finished run."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=float) + "\n")
