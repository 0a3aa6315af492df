"""Reading, validating and atomically writing standard datasets (.h5ad).

The standard dataset contract, which every parser and loader keeps: `.X` sparse CSR with
non-negative, finite values on a count scale (raw counts, or counts scaled per
cell such as TPM); unique gene symbols as `var_names`; task labels in named
`.obs` columns. Where outputs go, and what they may replace, is `celllm.outputs`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import anndata as ad
import h5py
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


# An `X` stored by gene (CSC) is read once, in column blocks of CSC_READ_VALUES stored values, and its
# entries bucketed by block of cells: in memory up to CSC_IN_MEMORY_BYTES of buckets, else in an anonymous
# temporary file (TMPDIR), 12 bytes a stored value. anndata's backed row slices of a CSC matrix read whole
# columns for every block instead, so a file was read once per block.
CSC_READ_VALUES = 2_000_000  # ~100 MB of work arrays per column block
CSC_IN_MEMORY_BYTES = 128 * 2**20  # ~11M stored values; the buckets of a larger matrix go to a temporary file
DENSE_READ_BYTES = 64 * 2**20  # of a dense `X`, the rows read (and made sparse) at once within a block
_ENTRY = np.dtype([("row", "<i4"), ("col", "<i4"), ("value", "<f4")])  # a stored value of a CSC `X`; row within its block
CSR_COMMAND = (
    'python -c "import anndata as ad, sys; a = ad.read_h5ad(sys.argv[1]); a.X = a.X.tocsr(); '
    "a.write_h5ad(sys.argv[2], compression='gzip')\" IN.h5ad OUT.h5ad"
)


def _smallest_key(values: np.ndarray, n: int) -> np.ndarray:
    """`values` (0 <= v < n) as the smallest unsigned type: numpy's stable argsort is a linear radix sort on 8 and 16 bits."""
    return values.astype(np.uint8 if n <= 2**8 else np.uint16 if n <= 2**16 else np.int64)


def _dense_rows(X: h5py.Dataset, start: int, stop: int) -> sp.csr_matrix:
    """Rows start..stop-1 of a dense backed `X` as float32 CSR, read DENSE_READ_BYTES at a time (whole chunks of rows)."""
    step = max(1, DENSE_READ_BYTES // max(1, X.shape[1] * X.dtype.itemsize))
    if X.chunks:  # a chunk is read whole: a slice of part of its rows would read it again for the next slice
        step = max(X.chunks[0], step // X.chunks[0] * X.chunks[0])
    parts = [sp.csr_matrix(X[first : min(first + step, stop)], dtype=np.float32) for first in range(start, stop, step)]
    return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr", dtype=np.float32)


def _csc_row_blocks(X, cells: int, name: str, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, sp.csr_matrix]]:
    """(first cell, float32 CSR) of each block of `cells` cells of a backed CSC `X` (of its cells `start` to `stop` - 1),
    its stored values read once (those of other cells too: a column holds every cell's).

    Memory: a column block's work arrays and one block of cells, plus the buckets while they are
    small (CSC_IN_MEMORY_BYTES) and 8 bytes per (column block, block of cells) for where the buckets begin
    (~2 MB for the paper's 1.8M cells); the temporary file is anonymous, so it goes when closed or the process ends.
    Entries stored twice for one cell and gene are summed (scipy's conversion), as no valid matrix has them.
    """
    group, (n_obs, n_vars) = X.group, X.shape
    stop = n_obs if stop is None else stop
    n_blocks = -(-(stop - start) // cells)
    try:
        indptr, data, indices = group["indptr"][...].astype(np.int64), group["data"], group["indices"]
    except Exception as exc:
        raise InputError(f"{name}: unreadable expression ({type(exc).__name__}: {exc})") from None
    nnz = int(indptr[-1]) if indptr.size else 0
    if indptr.size != n_vars + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any() or min(data.shape[0], indices.shape[0]) < nnz:
        raise InputError(f"{name}: unreadable expression (its CSC index pointers do not match its {data.shape[0]} stored values)")
    in_memory, spill_bytes = nnz * _ENTRY.itemsize <= CSC_IN_MEMORY_BYTES, nnz * _ENTRY.itemsize  # of a range of cells, at most
    spill_size = f"{spill_bytes / 1e9:.1f} GB" if spill_bytes >= 1e8 else f"{spill_bytes / 1e6:.1f} MB"
    log.info(
        "%s: expression is stored by gene (CSC); read once into blocks of %d cells (%d stored values, %s)",
        name,
        cells,
        nnz,
        "in memory" if in_memory else f"{spill_size} of temporary file in {tempfile.gettempdir()}",
    )
    with contextlib.ExitStack() as stack:
        spill = np.empty(nnz, _ENTRY) if in_memory else stack.enter_context(tempfile.TemporaryFile(prefix="celllm-csc-"))

        def put(entries: np.ndarray, at: int) -> None:
            if in_memory:
                spill[at : at + entries.size] = entries
                return
            try:
                spill.write(entries.view(np.uint8))  # written in order: `at` is the file's end
            except OSError as exc:
                raise InputError(
                    f"{name}: reading its expression stored by gene (CSC) needs {spill_size} "
                    f"of temporary space in {tempfile.gettempdir()} ({exc.strerror or exc}); set TMPDIR to a folder "
                    f"with room, or write the file by cell (CSR) once: {CSR_COMMAND}"
                ) from None

        def get(first: int, last: int) -> np.ndarray:
            if in_memory:
                return spill[first:last]
            entries = np.empty(last - first, _ENTRY)
            spill.seek(first * _ENTRY.itemsize)
            if spill.readinto(entries.view(np.uint8)) != entries.nbytes:
                raise OSError(f"temporary file of {name} is short")
            return entries

        # per column block, where each block of cells' entries begin in the buckets (n_blocks + 1 positions)
        starts: list[np.ndarray] = []
        col = written = 0
        while col < n_vars:
            end = min(n_vars, max(col + 1, int(np.searchsorted(indptr, indptr[col] + CSC_READ_VALUES, side="right")) - 1))
            first, last = int(indptr[col]), int(indptr[end])
            try:
                rows, values = np.asarray(indices[first:last]), np.asarray(data[first:last])
            except Exception as exc:
                raise InputError(f"{name} (genes {col}-{end - 1}): unreadable expression ({type(exc).__name__}: {exc})") from None
            if rows.size and (rows.min() < 0 or rows.max() >= n_obs):
                raise InputError(f"{name} (genes {col}-{end - 1}): unreadable expression (cell indices outside 0-{n_obs - 1})")
            genes = np.repeat(np.arange(col, end, dtype=np.int32), np.diff(indptr[col : end + 1]))
            if start > 0 or stop < n_obs:  # the range's cells only, counted from its first
                keep = (rows >= start) & (rows < stop)
                rows, values, genes = rows[keep] - start, values[keep], genes[keep]
            block = _smallest_key(rows // cells, n_blocks)
            order = np.argsort(block, kind="stable")  # by block of cells, genes in order within each
            entries = np.empty(rows.size, _ENTRY)
            entries["row"] = (rows % cells)[order]
            entries["col"] = genes[order]
            entries["value"] = values[order]  # float32, as the other layouts are read
            put(entries, written)
            starts.append(written + np.concatenate([[0], np.cumsum(np.bincount(block, minlength=n_blocks))]))
            col, written = end, written + entries.size
            del rows, values, genes, block, order, entries
        for b in range(n_blocks):
            first, last = start + b * cells, min(start + (b + 1) * cells, stop)
            size = sum(int(at[b + 1] - at[b]) for at in starts)
            rows, cols, values = np.empty(size, np.int32), np.empty(size, np.int32), np.empty(size, np.float32)
            filled = 0
            for at in starts:  # the block's entries of each column block in turn: genes in order within each cell
                part = get(int(at[b]), int(at[b + 1]))
                rows[filled : filled + part.size], cols[filled : filled + part.size] = part["row"], part["col"]
                values[filled : filled + part.size] = part["value"]
                filled += part.size
            X_block = sp.coo_matrix((values, (rows, cols)), shape=(last - first, n_vars)).tocsr()
            del rows, cols, values  # not held while the caller works on the block
            yield first, X_block


class DatasetBlocks:
    """A standard dataset read a block of cells at a time (backed AnnData): memory follows the
    block, not the file. Genes, labels and `.obs` are checked on opening, expression block by block,
    the count scale of every block too (see `check_count_scale`). Use as a context manager.

    `X` of every layout is read in linear time: by cell (CSR) a slice of each block; dense in slices of
    DENSE_READ_BYTES; by gene (CSC) once, bucketed by block of cells when `blocks` begins (see `_csc_row_blocks`)."""

    def __init__(self, path: str | os.PathLike, required_obs: Iterable[str] = (), scale_check: bool = True):
        self.path, self._adata = _open_h5ad(path, backed=True)
        self.scale_check = scale_check
        try:
            _check_shape_and_labels(self._adata, str(self.path), required_obs)
        except InputError:
            self.close()
            raise
        self.n_obs, self.var_names, self.obs = self._adata.n_obs, self._adata.var_names, self._adata.obs

    def blocks(self, cells: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, sp.csr_matrix]]:
        """(first cell, float32 CSR of the next `cells` cells), in file order, of the cells `start` to `stop` - 1
        (default: all), the first block beginning at `start`. Between blocks, the memory the caller freed is
        handed back to the system (`release_freed_memory`)."""
        stop = self.n_obs if stop is None else stop
        if not 0 <= start <= stop <= self.n_obs:
            raise ValueError(f"cells {start}:{stop} are not a range of the {self.n_obs} cells of {self.path}")
        for first, block in self._blocks(cells, start, stop):
            yield first, block
            release_freed_memory()

    def _blocks(self, cells: int, start: int, stop: int) -> Iterator[tuple[int, sp.csr_matrix]]:
        X = self._adata.X
        if getattr(X, "format", None) == "csc" and hasattr(X, "group"):  # backed, stored by gene
            for first, block in _csc_row_blocks(X, cells, str(self.path), start, stop):
                yield first, _checked_values(block, str(self.path), self.scale_check, first_cell=first)
            return
        for first in range(start, stop, cells):
            last = min(first + cells, stop)
            where = f"{self.path} (cells {first}-{last - 1})"
            try:
                block = _dense_rows(X, first, last) if isinstance(X, h5py.Dataset) else X[first:last]
            except Exception as exc:
                raise InputError(f"{where}: unreadable expression ({type(exc).__name__}: {exc})") from None
            yield first, _checked_values(block, str(self.path), self.scale_check, first_cell=first)

    def close(self) -> None:
        if self._adata.isbacked:
            self._adata.file.close()

    def __enter__(self) -> DatasetBlocks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def release_freed_memory() -> bool:
    """Hand the memory glibc keeps for reuse back to the system (malloc_trim); False (nothing done) where libc is not glibc.

    A block's arrays and a model's temporaries are freed blocks of many sizes, which glibc keeps and
    reuses only where a new request fits: without this, a long run's resident set keeps a block's
    worth of freed memory per size it has met. Once per block of thousands of cells it costs milliseconds.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


_MALLOC_TRIM = _malloc_trim()


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
        values = X.data[first : last : max(1, (last - first) // SCALE_SAMPLE)]
        if values.size == 0 or (values == np.round(values)).all():
            continue
        if totals is None:
            totals = np.asarray(X.sum(axis=1)).ravel()
        group = totals[start:stop]
        group = group[group > 0]
        if group.max() <= group.min() * (1 + 1e-3):
            continue  # every cell scaled to one total
        if values.max() <= LOG_SCALE_MAX:
            raise InputError(
                f"{cells(start, stop)}: values look log-transformed (not integers, at most {values.max():.3g}, "
                f"cells with different totals); {expected}"
            )


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
