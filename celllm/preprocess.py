"""Normalisation and expression binning, the two choices that turn counts into tokens.

The paper does not publish its normalisation. The released code bins values by
flooring and clipping at 5, which fits scBERT's recipe best: scale each cell to
10,000 total counts, then take log2(1 + x). Both steps are named here so that a
config can say which one it uses.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BINNINGS = ("floor_clip", "quantile")


def scale_to_total(X: sp.csr_matrix, target_sum: float = 1e4) -> sp.csr_matrix:
    """Scale each cell (row) to `target_sum` total; cells with zero total stay zero. New float32 CSR."""
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    totals = np.asarray(X.sum(axis=1)).ravel()
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals, dtype=np.float64), where=totals > 0)
    X.data *= np.repeat(scale, np.diff(X.indptr)).astype(np.float32)
    return X


def normalize_log2(X: sp.csr_matrix, target_sum: float = 1e4) -> sp.csr_matrix:
    """scBERT's normalisation, CellLM's input: each cell scaled to `target_sum`, then log2(1 + x)."""
    X = scale_to_total(X, target_sum)
    np.log2(1.0 + X.data, out=X.data)
    return X


def log_normalize(X: sp.csr_matrix, target_sum: float = 1e4) -> sp.csr_matrix:
    """Scanpy's usual input for linear baselines: normalize_total, then natural log1p."""
    X = scale_to_total(X, target_sum)
    np.log1p(X.data, out=X.data)
    return X


def bin_floor_clip(values: np.ndarray, n_bins: int = 6) -> np.ndarray:
    """The released code's binning: floor, clip to [0, n_bins - 1].

    A non-zero value below 1 falls in bin 0, like the zeros it is not; with
    n_bins=6 bins run 0..5 and everything from 5 up shares bin 5.
    """
    return np.clip(np.floor(values), 0, n_bins - 1).astype(np.int64)


def bin_quantile(values: np.ndarray, indptr: np.ndarray, n_bins: int) -> np.ndarray:
    """Alternative: equal-frequency bins of each cell's own non-zero values (scGPT-like).

    Robust to sequencing depth: bin k holds the cell's k-th n_bins-quantile of
    expressed genes. Ties share the lower bin.
    """
    bins = np.empty(values.shape[0], dtype=np.int64)
    for start, stop in zip(indptr[:-1], indptr[1:]):
        cell = values[start:stop]
        if cell.size == 0:
            continue
        # rank of each value among the cell's values (ties -> lowest rank)
        ranks = np.searchsorted(np.sort(cell), cell, side="left")
        bins[start:stop] = (ranks * n_bins) // cell.size
    return bins


def bin_values(X: sp.csr_matrix, binning: str, n_bins: int) -> np.ndarray:
    """Bin the stored (non-zero) values of a normalised CSR matrix, row by row."""
    if binning == "floor_clip":
        return bin_floor_clip(X.data, n_bins)
    if binning == "quantile":
        return bin_quantile(X.data, X.indptr, n_bins)
    raise ValueError(f"unknown binning '{binning}' (choose from {', '.join(BINNINGS)})")
