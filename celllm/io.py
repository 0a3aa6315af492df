"""Reading, validating and atomically writing standard datasets (.h5ad), and checking outputs.

The standard dataset contract, which every parser and loader keeps: `.X` sparse CSR with
non-negative, finite values on a count scale (raw counts, or counts scaled per
cell such as TPM); unique gene symbols as `var_names`; task labels in named
`.obs` columns.

Outputs are checked before any work starts (`check_output_file`,
`check_output_folder`): an output never replaces an input, nor something of
another kind, and its folder must be writable. A folder replaced by
`atomic_path` moves in two renames; `recover_interrupted_swap` finishes a swap
that a kill cut between them.
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


def _open_h5ad(path: str | os.PathLike, backed: bool = False) -> tuple[Path, ad.AnnData]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix != ".h5ad":
        raise InputError(f"{path}: expected an .h5ad file (AnnData), got '{path.suffix or 'no suffix'}'")
    try:
        return path, ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py/anndata raise many types for a corrupt file
        raise InputError(f"{path}: not a readable AnnData .h5ad file ({type(exc).__name__}: {exc})") from None


def read_dataset(path: str | os.PathLike, required_obs: Iterable[str] = (), scale_check: bool = True) -> ad.AnnData:
    """Read an .h5ad file and check it against the standard dataset contract.

    Returns the AnnData with `.X` as float32 CSR. Raises InputError with one
    line naming the file for anything that breaks the contract; `scale_check=False`
    accepts values that do not look like counts (see `check_count_scale`).
    For files too large to hold, `DatasetBlocks` reads and checks a block of cells at a time.
    """
    path, adata = _open_h5ad(path)
    validate_dataset(adata, str(path), required_obs, scale_check)
    return adata


def dataset_genes(path: str | os.PathLike) -> list[str]:
    """The gene names of an .h5ad file (expression is not read); InputError if missing, corrupt or not unique."""
    with DatasetBlocks(path) as dataset:
        return [str(g) for g in dataset.var_names]


def _check_shape_and_labels(adata: ad.AnnData, name: str, required_obs: Iterable[str]) -> None:
    if adata.n_obs == 0:
        raise InputError(f"{name}: the dataset has no cells")
    if adata.n_vars == 0:
        raise InputError(f"{name}: the dataset has no genes")
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()][0]
        raise InputError(f"{name}: gene names are not unique (for example '{dup}')")
    for column in required_obs:
        if column not in adata.obs.columns:
            raise InputError(f"{name}: missing label column '{column}' in .obs (has: {', '.join(map(str, adata.obs.columns)) or 'none'})")
        if adata.obs[column].isna().any():
            raise InputError(f"{name}: label column '{column}' has missing values")


def _checked_values(X, name: str, scale_check: bool) -> sp.csr_matrix:
    """`X` as float32 CSR, finite and non-negative (and count-like with `scale_check`), or InputError."""
    if X is None:
        raise InputError(f"{name}: .X is empty")
    if not (sp.issparse(X) and X.format == "csr" and X.dtype == np.float32):
        X = sp.csr_matrix(X, dtype=np.float32)
    values = X.data
    if values.size and not np.isfinite(values).all():
        raise InputError(f"{name}: expression contains NaN or infinite values")
    if values.size and values.min() < 0:
        raise InputError(f"{name}: expression contains negative values (expected counts or size-normalised values)")
    if scale_check:
        check_count_scale(X, name)
    return X


def validate_dataset(adata: ad.AnnData, name: str, required_obs: Iterable[str] = (), scale_check: bool = True) -> None:
    """Check the contract in place; converts `.X` to float32 CSR."""
    _check_shape_and_labels(adata, name, required_obs)
    adata.X = _checked_values(adata.X, name, scale_check)


class DatasetBlocks:
    """A standard dataset read a block of cells at a time (backed AnnData): memory follows the
    block, not the file. Genes, labels and `.obs` are checked on opening, expression block by block
    (the count-scale check on the first block). Use as a context manager."""

    def __init__(self, path: str | os.PathLike, required_obs: Iterable[str] = (), scale_check: bool = True):
        self.path, self._adata = _open_h5ad(path, backed=True)
        self.scale_check = scale_check
        try:
            _check_shape_and_labels(self._adata, str(self.path), required_obs)
        except InputError:
            self.close()
            raise
        self.n_obs, self.var_names, self.obs = self._adata.n_obs, self._adata.var_names, self._adata.obs

    def blocks(self, cells: int) -> Iterator[tuple[int, sp.csr_matrix]]:
        """(first cell, float32 CSR of the next `cells` cells), in file order."""
        for start in range(0, self.n_obs, cells):
            stop = min(start + cells, self.n_obs)
            where = f"{self.path} (cells {start}-{stop - 1})"
            try:
                X = self._adata.X[start:stop]
            except Exception as exc:
                raise InputError(f"{where}: unreadable expression ({type(exc).__name__}: {exc})") from None
            yield start, _checked_values(X, where, self.scale_check and start == 0)

    def close(self) -> None:
        if self._adata.isbacked:
            self._adata.file.close()

    def __enter__(self) -> "DatasetBlocks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# log1p of counts stays below ~12 and log2(1 + x) of CPM below ~20; counts and TPM go far higher
LOG_SCALE_MAX = 30.0
SCALE_SAMPLE = 5_000_000  # stored values the scale check reads at most


def check_count_scale(X: sp.csr_matrix, name: str) -> None:
    """InputError unless `X` looks like counts or counts scaled per cell (CellLM normalises them itself).

    Refused: every non-zero value equal to 1 (binary data), and non-integer
    values that never exceed LOG_SCALE_MAX in cells whose totals differ (log
    transformed). Integers pass; so do non-integer values whose cells all share
    one total (size-normalised) or that reach beyond LOG_SCALE_MAX (TPM, intensities).
    The values are read through an evenly spaced sample of at most SCALE_SAMPLE.
    """
    values = X.data
    if values.size == 0:
        return
    values = values[:: max(1, values.size // SCALE_SAMPLE)]  # evenly spaced, a view: memory flat in the data's size
    expected = "CellLM reads counts or size-normalised counts (raw counts are often in .raw.X or a 'counts' layer)"
    if (values == 1).all():
        raise InputError(f"{name}: every non-zero value is 1, which looks like binary data, not counts; {expected}")
    if (values == np.round(values)).all():
        return
    totals = np.asarray(X.sum(axis=1)).ravel()
    totals = totals[totals > 0]
    if totals.max() <= totals.min() * (1 + 1e-3):
        return  # every cell scaled to one total
    if values.max() <= LOG_SCALE_MAX:
        raise InputError(f"{name}: values look log-transformed (not integers, at most {values.max():.3g}, cells with different totals); {expected}")


def check_writable(folder: Path, what: str) -> None:
    """InputError unless a file can be created in `folder` or, where it does not exist yet, in its nearest existing parent."""
    folder = Path(folder).absolute()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise InputError(f"{what}: {existing} is not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {existing} ({exc.strerror or exc})") from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_file(out, suffix: str, inputs: Iterable = (), what: str = "output") -> Path:
    """Check, before any work, that `out` can be written without destroying anything but an older file of its kind.

    `out` must end in `suffix`, must not be a folder, must not be (or lie inside)
    one of `inputs` (files or folders), and its folder must be writable.
    """
    out = Path(out)
    resolved = out.resolve()
    if out.is_dir():
        raise InputError(f"{out}: is a folder; the {what} must be a {suffix} file (nothing was written)")
    if out.suffix != suffix:
        raise InputError(f"{out}: the {what} must be a {suffix} file")
    for given in inputs:
        if resolved == Path(given).resolve():
            raise InputError(f"{out}: the {what} would replace the input {given}; choose another path")
        if _inside(resolved, Path(given).resolve()):
            raise InputError(f"{out}: the {what} would be written inside the input folder {given}; choose another path")
    check_writable(out.parent, str(out))
    return out


def check_output_folder(out, kind: str, is_kind, inputs: Iterable = ()) -> Path:
    """Check, before any work, that folder `out` can be written: it does not exist, or it is a `kind`
    (`is_kind(out)`), it holds none of `inputs`, and its parent is writable."""
    out = Path(out)
    resolved = out.resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; the output must be a {kind} folder")
    for given in inputs:
        if _inside(Path(given).resolve(), resolved):
            raise InputError(f"{out}: holds the input {given}, which writing the {kind} would delete; choose another folder")
    if out.is_dir() and any(out.iterdir()) and not is_kind(out):
        raise InputError(f"{out}: exists and is not a {kind} folder; choose a new folder (nothing was written)")
    check_writable(out.parent, str(out))
    return out


def recover_interrupted_swap(path) -> bool:
    """Finish a folder replacement of `atomic_path` that a kill cut between its two renames.

    Then `path` is missing, the old version waits as `.{name}.*/{name}.previous` and the
    new one, complete, as `.{name}.*/{name}` (the first rename happens only once the new
    version is written). Moves the new version into place; returns whether it did.
    """
    path = Path(path)
    if path.exists():
        return False
    for leftover in sorted(path.parent.glob(f".{path.name}.*")):
        if (leftover / f"{path.name}.previous").is_dir() and (leftover / path.name).is_dir():
            try:
                os.replace(leftover / path.name, path)
            except FileNotFoundError:  # another process recovered it first
                pass
            shutil.rmtree(leftover, ignore_errors=True)
            return path.exists()
    return False


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
