"""Reading, validating and atomically writing standard datasets (.h5ad).

The standard dataset contract, which every parser and loader keeps: `.X` sparse CSR with
non-negative, finite values on a count scale (raw counts, or counts scaled per
cell such as TPM); unique gene symbols as `var_names`; task labels in named
`.obs` columns. Where outputs go, and what they may replace, is `celllm.outputs`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.outputs import atomic_path

log = logging.getLogger(__name__)


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


def _checked_values(X, name: str, scale_check: bool, first_cell: int | None = None) -> sp.csr_matrix:
    """`X` (all of dataset `name`, or its cells from `first_cell` on) as float32 CSR, finite and non-negative
    (and count-like with `scale_check`, see `check_count_scale`), or InputError naming the dataset and cells."""
    if X is None:
        raise InputError(f"{name}: .X is empty")
    if not (sp.issparse(X) and X.format == "csr" and X.dtype == np.float32):
        X = sp.csr_matrix(X, dtype=np.float32)
    where = name if first_cell is None else f"{name} (cells {first_cell}-{first_cell + X.shape[0] - 1})"
    values = X.data
    if values.size and not np.isfinite(values).all():
        raise InputError(f"{where}: expression contains NaN or infinite values")
    if values.size and values.min() < 0:
        raise InputError(f"{where}: expression contains negative values (expected counts or size-normalised values)")
    if scale_check:
        check_count_scale(X, name, first_cell)
    return X


def validate_dataset(adata: ad.AnnData, name: str, required_obs: Iterable[str] = (), scale_check: bool = True) -> None:
    """Check the contract in place; converts `.X` to float32 CSR."""
    _check_shape_and_labels(adata, name, required_obs)
    adata.X = _checked_values(adata.X, name, scale_check)


class DatasetBlocks:
    """A standard dataset read a block of cells at a time (backed AnnData): memory follows the
    block, not the file. Genes, labels and `.obs` are checked on opening, expression block by block,
    the count scale of every block too (see `check_count_scale`). Use as a context manager."""

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
            yield start, _checked_values(X, str(self.path), self.scale_check, first_cell=start)

    def close(self) -> None:
        if self._adata.isbacked:
            self._adata.file.close()

    def __enter__(self) -> "DatasetBlocks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# log1p of counts stays below ~12 and log2(1 + x) of CPM below ~20; counts and TPM go far higher
LOG_SCALE_MAX = 30.0
SCALE_SAMPLE = 5_000_000  # stored values the scale check reads at most, of each group of cells (and of all cells for the binary test)
# cells the log test judges together, counted from a file's first cell, so that read_dataset and the blocks
# of DatasetBlocks (8192 cells in tokenize and embed) judge the same groups and accept the same files
SCALE_GROUP_CELLS = 1024


def check_count_scale(X: sp.csr_matrix, name: str, first_cell: int | None = None) -> None:
    """InputError unless `X` looks like counts or counts scaled per cell (CellLM normalises them itself).

    Refused: every non-zero value equal to 1 (binary data), and non-integer
    values that never exceed LOG_SCALE_MAX in cells whose totals differ (log
    transformed). Integers pass; so do non-integer values whose cells all share
    one total (size-normalised) or that reach beyond LOG_SCALE_MAX (TPM, intensities).
    The values are read through evenly spaced samples of at most SCALE_SAMPLE.

    `X` is all of dataset `name`, or (DatasetBlocks) its cells from `first_cell` on. The log
    test judges each group of SCALE_GROUP_CELLS cells on its own and names the group's cells:
    judged at once, counts followed by log-normalised cells pass, since the counts reach beyond
    LOG_SCALE_MAX as TPM does. The binary test judges all of `X`, and of a file read in blocks
    its first block only: the last blocks of a raw matrix sorted by depth may hold single counts only.
    """
    if X.nnz == 0:
        return
    n_cells, offset = X.shape[0], first_cell or 0
    expected = "CellLM reads counts or size-normalised counts (raw counts are often in .raw.X or a 'counts' layer)"
    named = first_cell is not None or n_cells > SCALE_GROUP_CELLS

    def cells(start: int, stop: int) -> str:
        return f"{name} (cells {offset + start}-{offset + stop - 1})" if named else name

    # evenly spaced samples are views: memory flat in the data's size
    if offset == 0 and (X.data[:: max(1, X.nnz // SCALE_SAMPLE)] == 1).all():
        raise InputError(f"{cells(0, n_cells)}: every non-zero value is 1, which looks like binary data, not counts; {expected}")
    edges = [0, *range(-offset % SCALE_GROUP_CELLS or SCALE_GROUP_CELLS, n_cells, SCALE_GROUP_CELLS), n_cells]
    totals = None
    for start, stop in zip(edges[:-1], edges[1:]):
        first, last = int(X.indptr[start]), int(X.indptr[stop])
        # a sample of the group alone: read whole or in blocks, a group is judged on the same values
        values = X.data[first:last:max(1, (last - first) // SCALE_SAMPLE)]
        if values.size == 0 or (values == np.round(values)).all():
            continue
        if totals is None:
            totals = np.asarray(X.sum(axis=1)).ravel()
        group = totals[start:stop]
        group = group[group > 0]
        if group.max() <= group.min() * (1 + 1e-3):
            continue  # every cell scaled to one total
        if values.max() <= LOG_SCALE_MAX:
            raise InputError(f"{cells(start, stop)}: values look log-transformed (not integers, at most {values.max():.3g}, "
                             f"cells with different totals); {expected}")


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (compressed)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def read_annotated_tsv(path, what: str = "table") -> pd.DataFrame:
    """A tab-separated table of strings whose lines starting with '#' are comments (config tables kept by hand)."""
    rows = [line.split("\t") for line in read_text_lines(path, what) if line.strip() and not line.startswith("#")]
    return pd.DataFrame(rows[1:], columns=rows[0]) if rows else pd.DataFrame()


def read_text_lines(path, what: str) -> list[str]:
    """The lines of a UTF-8 text file kept by hand (a list of names, a small table), without their line endings.

    A leading byte-order mark and the CR of CRLF line endings, which spreadsheets and Windows
    editors write, are stripped with one warning naming the file: a mark left in place would
    become part of the first name. One line naming the file for a missing, unreadable or
    non-UTF-8 file. Blank lines and the lines' own spaces are kept: what they mean is the caller's.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found" if not path.exists() else f"{path}: expected the {what}, found a folder")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); save it as UTF-8") from None
    stripped = []
    if text.startswith("\ufeff"):
        text = text[1:]
        stripped.append("a byte-order mark")
    crlf = text.count("\r\n")
    if crlf:
        stripped.append(f"{crlf} CRLF line ending{'s' if crlf > 1 else ''}")
    if stripped:
        log.warning("%s: stripped %s from the %s", path, " and ".join(stripped), what)
    return text.splitlines()  # also ends lines at CR and CRLF
