"""Reading, validating and atomically writing standard datasets (.h5ad).

The standard dataset contract, which every parser and loader keeps: `.X` sparse CSR with
non-negative, finite values on a count scale; unique gene symbols as
`var_names`; task labels in named `.obs` columns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError


def read_dataset(path: str | os.PathLike, required_obs: Iterable[str] = ()) -> ad.AnnData:
    """Read an .h5ad file and check it against the standard dataset contract.

    Returns the AnnData with `.X` as float32 CSR. Raises InputError with one
    line naming the file for anything that breaks the contract.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix != ".h5ad":
        raise InputError(f"{path}: expected an .h5ad file (AnnData), got '{path.suffix or 'no suffix'}'")
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types for a corrupt file
        raise InputError(f"{path}: not a readable AnnData .h5ad file ({type(exc).__name__}: {exc})") from None
    validate_dataset(adata, str(path), required_obs)
    return adata


def validate_dataset(adata: ad.AnnData, name: str, required_obs: Iterable[str] = ()) -> None:
    """Check the contract in place; converts `.X` to float32 CSR."""
    if adata.n_obs == 0:
        raise InputError(f"{name}: the dataset has no cells")
    if adata.n_vars == 0:
        raise InputError(f"{name}: the dataset has no genes")
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()][0]
        raise InputError(f"{name}: gene names are not unique (for example '{dup}')")
    X = adata.X
    if X is None:
        raise InputError(f"{name}: .X is empty")
    if not (sp.issparse(X) and X.format == "csr" and X.dtype == np.float32):
        X = sp.csr_matrix(X, dtype=np.float32)
    values = X.data
    if values.size and not np.isfinite(values).all():
        raise InputError(f"{name}: expression contains NaN or infinite values")
    if values.size and values.min() < 0:
        raise InputError(f"{name}: expression contains negative values (expected counts or size-normalised values)")
    adata.X = X
    for column in required_obs:
        if column not in adata.obs.columns:
            raise InputError(f"{name}: missing label column '{column}' in .obs (has: {', '.join(map(str, adata.obs.columns)) or 'none'})")
        if adata.obs[column].isna().any():
            raise InputError(f"{name}: label column '{column}' has missing values")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only on success.

    Works for files and folders, so a killed or failed writer never leaves
    something that looks finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # a folder cannot be replaced in one rename: move the old one aside first, so
            # that a kill between the two renames leaves it recoverable, never deleted
            os.replace(path, tmp.parent / f"{path.name}.previous")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (compressed)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def read_annotated_tsv(path, what: str = "table") -> pd.DataFrame:
    """A tab-separated table of strings whose lines starting with '#' are comments (config tables kept by hand)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return pd.DataFrame(rows[1:], columns=rows[0]) if rows else pd.DataFrame()
