"""Split files: how every task draws train / validation / test, and how a run reads its split back.

(The files a run leaves behind, and their provenance, are benchmarks.records.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
