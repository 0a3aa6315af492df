"""Two views per cell and the three pretraining losses.

How the paper makes its two views is not published. Here each view of a cell
keeps a random share of its non-zero genes (gene dropout) and hides a random
share of the kept bins behind [MASK]; the hidden bins are the masked-language
targets, so one forward pass per view serves all three objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from celllm.errors import InputError
from celllm.tokens import TokenConfig, TokenizedCells, pad_ragged, padded_length, ragged_rows, ragged_take

IGNORE = -100  # label value that cross-entropy skips

TISSUE_CODES = {"normal": 0, "tumor": 1}


def tissue_codes(values, source: str) -> np.ndarray:
    """'normal' -> 0, 'tumor' -> 1 (int64); InputError naming `source` for anything else."""
    codes = np.array([TISSUE_CODES.get(str(v), -1) for v in values], dtype=np.int64)
    if (codes < 0).any():
        bad = sorted({str(v) for v, c in zip(values, codes) if c < 0})[:3]
        raise InputError(f"{source}: column 'tissue' must hold 'tumor' or 'normal', found {', '.join(bad)}")
    return codes


# splitmix64's finaliser: a counter-based hash, so each view's random draws are a pure
# function of (seed, step, cell, view, position), whichever rank or sub-batch makes them
_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)
_LOW32 = np.uint64(0xFFFFFFFF)
VIEW_KEY, DROPOUT = 1, 2  # what a hash is for


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (and returned)."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _hash(*keys) -> np.ndarray:
    """uint64 hash of the keys (ints or int arrays, broadcast together), element by element."""
    h = np.zeros(np.broadcast_shapes(*(np.shape(k) for k in keys)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for key in keys:
            h ^= np.asarray(key).astype(np.uint64) + _GOLDEN
            _mix(h)
    return h


@dataclass
class ViewBatch:
    """2N views of N cells, stored flat: view v of the c-th cell is row 2c + v, its tokens
    [indptr[row], indptr[row + 1]) of `genes`, `bins` (input, [MASK] where hidden) and `targets`."""

    indptr: np.ndarray  # (2N + 1,)
    genes: np.ndarray  # int64 vocabulary ids
    bins: np.ndarray  # int64 input bins
    targets: np.ndarray  # int64: the true bin where masked, IGNORE elsewhere
    tissue: np.ndarray  # (2N,) 0 normal, 1 tumor, IGNORE unknown
    seeds: np.ndarray  # (2N,) per-view dropout seeds (celllm.model.dropout)

    @property
    def n_cells(self) -> int:
        return (len(self.indptr) - 1) // 2

    def cell_lengths(self) -> np.ndarray:
        """Per cell, the tokens of its longer view, [CLS] included (what a padded pass holds)."""
        return 1 + np.diff(self.indptr).reshape(-1, 2).max(axis=1)

    def cells(self, positions) -> ViewBatch:
        """The views of the cells at these positions of the batch."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = np.stack([2 * positions, 2 * positions + 1], axis=1).ravel()
        indptr, source = ragged_take(self.indptr, rows)
        return ViewBatch(indptr, self.genes[source], self.bins[source], self.targets[source], self.tissue[rows], self.seeds[rows])

    def chunk(self, start_cell: int, stop_cell: int, vocab_size: int, cfg: TokenConfig) -> dict[str, torch.Tensor]:
        """Padded tensors for the views of cells [start_cell, stop_cell)."""
        rows = slice(2 * start_cell, 2 * stop_cell)
        indptr = self.indptr[2 * start_cell : 2 * stop_cell + 1]
        tokens = slice(int(indptr[0]), int(indptr[-1]))
        length = padded_length(1 + int(np.diff(indptr).max(initial=0)))  # few shapes: see padded_length
        batch = pad_ragged(
            indptr,
            self.genes[tokens],
            self.bins[tokens],
            vocab_size,
            cfg,
            extra={"mlm_targets": (self.targets[tokens], IGNORE)},
            length=length,
        )
        batch["tissue"] = torch.from_numpy(self.tissue[rows])
        batch["seeds"] = torch.from_numpy(self.seeds[rows])
        return batch


def make_views(
    cells: TokenizedCells, indices: np.ndarray, tissue: np.ndarray, seed: int, step: int, keep: float, mask_ratio: float, cfg: TokenConfig
) -> ViewBatch:
    """Two views of each cell of `indices` (vectorised over the whole batch).

    Each view keeps a `keep` share of the cell's genes (at least one) and hides a
    `mask_ratio` share of the kept bins behind [MASK]. Every draw is a hash of
    (seed, step, cell, view, position), so a cell's views are the same whichever
    other cells, rank or sub-batch share its step. One 64-bit hash per token and
    view gives both draws (its high and low 32 bits, compared as integers).
    """
    indices = np.asarray(indices, dtype=np.int64)
    cell_of_row, view_of_row = np.repeat(indices, 2), np.tile(np.array([0, 1], dtype=np.int64), len(indices))
    # every cell's tokens twice, once per view: rows 2c and 2c + 1, already in the batch's layout
    row_indptr, source = ragged_take(cells.indptr, cell_of_row)
    rows, position = ragged_rows(row_indptr)
    with np.errstate(over="ignore"):
        h = _hash(seed, step, cell_of_row, view_of_row, VIEW_KEY)[rows]
        h ^= position.astype(np.uint64) * _GOLDEN
        _mix(h)
    kept = (h >> np.uint64(32)) < np.uint64(keep * 2**32)
    counts = np.bincount(rows[kept], minlength=len(cell_of_row))
    for row in np.flatnonzero((counts == 0) & (np.diff(row_indptr) > 0)):  # rare: a view keeps at least its lowest draw
        start = row_indptr[row]
        kept[start + np.argmin(h[start : row_indptr[row + 1]] >> np.uint64(32))] = True
        counts[row] = 1
    masked = (h[kept] & _LOW32) < np.uint64(mask_ratio * 2**32)
    kept_source = source[kept]
    genes = np.asarray(cells.gene_ids[kept_source], dtype=np.int64)
    true_bins = np.asarray(cells.bins[kept_source], dtype=np.int64)
    bins = np.where(masked, cfg.mask_bin, true_bins)
    targets = np.where(masked, true_bins, IGNORE)
    seeds = (_hash(seed, step, cell_of_row, view_of_row, DROPOUT) & np.uint64(2**31 - 1)).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return ViewBatch(indptr, genes, bins, targets, np.asarray(tissue, dtype=np.int64)[cell_of_row], seeds)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Losses in float32 or wider (bf16 activations are upcast, float64 kept)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over 2N projections where rows 2c and 2c + 1 are positives.

    Every other row of the whole batch is a negative.
    """
    z = F.normalize(at_least_float32(z), dim=-1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    positives = torch.arange(z.shape[0], device=z.device) ^ 1  # 0<->1, 2<->3, ...
    return F.cross_entropy(logits, positives)


def per_sequence_loss_sums(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Summed masked-bin and tissue losses of a chunk, with their counts.

    Sums (not means) let sub-batches add up to the full-batch mean exactly.
    """
    logits = outputs["mlm_logits"]
    mlm = F.cross_entropy(
        at_least_float32(logits.reshape(-1, logits.shape[-1])), batch["mlm_targets"].reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    tissue = F.cross_entropy(at_least_float32(outputs["tissue_logits"]), batch["tissue"], ignore_index=IGNORE, reduction="sum")
    return {
        "mlm_sum": mlm,
        "mlm_count": (batch["mlm_targets"] != IGNORE).sum(),
        "tissue_sum": tissue,
        "tissue_count": (batch["tissue"] != IGNORE).sum(),
    }
