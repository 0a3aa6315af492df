"""Two views per cell, and the pretraining objectives: each one's head, loss and weight, registered once.

How the paper makes its two views is not published. Here each view of a cell
keeps a random share of its non-zero genes (gene dropout) and hides a random
share of the kept bins behind [MASK]; the hidden bins are the masked-language
targets, so one forward pass per view serves every objective.

`OBJECTIVES` is the one list of pretraining objectives (`Objective`): the model
builds their heads from it (celllm.pretrain.model), the steps take and weight
their losses from it (celllm.pretrain.dnc), and the training log's columns, the
loss figure and the ablations follow it. docs/architecture.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from celllm.errors import InputError
from celllm.tokens import TokenConfig, TokenizedCells, pad_ragged, padded_length, ragged_rows, ragged_take

if TYPE_CHECKING:
    from celllm.config import CellLMConfig

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
VIEW_KEY, DROPOUT, BIN_NOISE = 1, 2, 3  # what a hash is for


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
    cells: TokenizedCells,
    indices: np.ndarray,
    tissue: np.ndarray,
    seed: int,
    step: int,
    keep: float,
    mask_ratio: float,
    cfg: TokenConfig,
    *,
    drop: str = "uniform",
    bin_noise: float = 0.0,
) -> ViewBatch:
    """Two views of each cell of `indices` (vectorised over the whole batch).

    Each view keeps a `keep` share of the cell's genes (at least one) and hides a
    `mask_ratio` share of the kept bins behind [MASK]. Every draw is a hash of
    (seed, step, cell, view, position), so a cell's views are the same whichever
    other cells, rank or sub-batch share its step. One 64-bit hash per token and
    view gives both draws (its high and low 32 bits, compared as integers).

    `drop`: "uniform", every gene alike; "low_expression", a gene's chance of being
    dropped proportional to (n_bins - its bin), scaled so that a cell still keeps about
    `keep` of its genes (dropout hits the weakly expressed genes that sequencing loses
    first). `bin_noise`: the share of kept, unmasked bins moved one bin up or down
    (clipped to the expression bins), drawn from a second hash of the same token.
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
    if drop == "uniform":
        kept = (h >> np.uint64(32)) < np.uint64(keep * 2**32)
    elif drop == "low_expression":
        weight = (cfg.n_bins - np.asarray(cells.bins[source], dtype=np.float64)).clip(min=1.0)
        row_mean = np.bincount(rows, weights=weight, minlength=len(cell_of_row)) / np.maximum(np.diff(row_indptr), 1)
        drop_chance = np.minimum(1.0, (1.0 - keep) * weight / row_mean[rows])
        kept = (h >> np.uint64(32)).astype(np.float64) < (1.0 - drop_chance) * 2**32
    else:
        raise ValueError(f"drop must be 'uniform' or 'low_expression', got {drop!r}")
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
    if bin_noise > 0:
        with np.errstate(over="ignore"):
            noise = _mix(h[kept] ^ (np.uint64(BIN_NOISE) * _GOLDEN))
        moved = ~masked & ((noise & _LOW32) < np.uint64(bin_noise * 2**32))
        shifted = np.clip(true_bins + np.where(noise >> np.uint64(63), 1, -1), 0, cfg.n_bins - 1)
        bins = np.where(moved, shifted, bins)
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


def masked_bin_loss_sum(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the hidden bins, summed over the chunk's masked tokens."""
    return F.cross_entropy(
        at_least_float32(logits.reshape(-1, logits.shape[-1])), batch["mlm_targets"].reshape(-1), ignore_index=IGNORE, reduction="sum"
    )


def tissue_loss_sum(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Tumor-vs-normal cross-entropy, summed over the chunk's labelled views."""
    return F.cross_entropy(at_least_float32(logits), batch["tissue"], ignore_index=IGNORE, reduction="sum")


READS = ("cell", "cls", "tokens")  # what an objective's head can read (Objective.reads)
LOG_COLUMNS = ("step", "loss", "grad_norm", "lr", "cells_per_s")  # the training log's columns besides the objectives'


@dataclass(frozen=True)
class Objective:
    """One pretraining objective: its name, its head on the encoder, its loss and its weight's option.

    The loss is one of two kinds. `batch_loss(output, setup)` takes the head's output for
    the whole (gathered) batch at once, e.g. a contrastive loss whose negatives are the
    other cells: the divide-and-conquer step caches the gradient with respect to that
    output. `loss_sum(output, batch)` sums over a chunk's sequences or tokens, with
    `count(batch)` the number of terms: sums over sub-batches add up to the mean of the
    full batch exactly. `batch` is a padded chunk as `ViewBatch.chunk` makes it
    (gene_ids, bins, mask, mlm_targets, tissue, seeds).
    """

    name: str  # the column of the training log and the key of its weight in LossWeights
    title: str  # what it is, in words (the loss figure's panel)
    weight_key: str  # the PretrainConfig option that weights it (0 turns it off)
    head_name: str  # the attribute of CellLMForPretraining holding its head: its weights' key prefix in a checkpoint
    head: Callable[[CellLMConfig], nn.Module]  # builds the head from the config
    # what the head reads: "cell" (the cell embedding, encoder.pool: (n, dim)), "cls" (the [CLS] state, the same
    # unless encoder.pooling is "mean") or "tokens" (every state, (n, length, dim))
    reads: str
    output: str  # the key of the head's output among the model's outputs
    batch_loss: Callable[[torch.Tensor, object], torch.Tensor] | None = None
    loss_sum: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor] | None = None
    count: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None

    def __post_init__(self):
        if self.name in LOG_COLUMNS:
            raise ValueError(f"objective {self.name}: the name of a column the trainer writes itself ({', '.join(LOG_COLUMNS)})")
        if self.reads not in READS:
            raise ValueError(f"objective {self.name}: reads must be one of {', '.join(READS)}, got {self.reads!r}")
        if (self.batch_loss is None) == (self.loss_sum is None) or (self.loss_sum is None) != (self.count is None):
            raise ValueError(f"objective {self.name}: give either batch_loss, or loss_sum and count")


def _projection(cfg: CellLMConfig) -> nn.Module:
    """SimCLR's head (`projection: mlp`), or none: the loss then sees the cell embedding itself."""
    if cfg.pretrain.projection == "none":
        return nn.Identity()
    dim = cfg.encoder.dim
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, cfg.pretrain.proj_dim))


OBJECTIVES: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective(
            name="contrastive",
            title="divide-and-conquer contrastive (NT-Xent)",
            weight_key="weight_contrastive",
            head_name="projection",
            head=_projection,
            reads="cell",
            output="z",
            batch_loss=lambda z, setup: nt_xent(z, setup.temperature),
        ),
        Objective(
            name="mlm",
            title="masked bin prediction",
            weight_key="weight_mlm",
            head_name="mlm_head",
            # the released model's head has 8 classes (the bins, [CLS] and PAD): `mlm_classes` keeps that width
            head=lambda cfg: nn.Linear(cfg.encoder.dim, cfg.pretrain.mlm_classes or cfg.tokens.n_bins),
            reads="tokens",
            output="mlm_logits",
            loss_sum=masked_bin_loss_sum,
            count=lambda batch: (batch["mlm_targets"] != IGNORE).sum(),
        ),
        Objective(
            name="tissue",
            title="tumor vs normal ([CLS])",
            weight_key="weight_tissue",
            head_name="tissue_head",
            head=lambda cfg: nn.Linear(cfg.encoder.dim, 2),
            reads="cls",  # the paper: [CLS] predicts tumor vs normal
            output="tissue_logits",
            loss_sum=tissue_loss_sum,
            count=lambda batch: (batch["tissue"] != IGNORE).sum(),
        ),
    )
}


def objectives() -> list[Objective]:
    """The registered objectives, in their order (heads are built, losses added and logged in it)."""
    return list(OBJECTIVES.values())


def objective(name: str) -> Objective:
    """The registered objective `name`; ValueError naming the known ones otherwise."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown pretraining objective '{name}' (known: {', '.join(OBJECTIVES)})") from None


class LossWeights:
    """The weight of every registered objective (immutable): `LossWeights.from_config(cfg.pretrain)` reads
    each one's `weight_key`; `LossWeights(mlm=2.0)` sets some and leaves the others at 1."""

    def __init__(self, **weights: float):
        unknown = set(weights) - set(OBJECTIVES)
        if unknown:
            raise ValueError(f"no pretraining objective named {', '.join(sorted(unknown))} (known: {', '.join(OBJECTIVES)})")
        self._weights = {name: float(weights.get(name, 1.0)) for name in OBJECTIVES}

    @classmethod
    def from_config(cls, pretrain) -> LossWeights:
        """The weights a PretrainConfig gives, one option per objective (`Objective.weight_key`)."""
        missing = [o.weight_key for o in objectives() if not hasattr(pretrain, o.weight_key)]
        if missing:
            raise ValueError(f"no pretrain option {', '.join(missing)}: an objective's weight is an option of PretrainConfig")
        return cls(**{o.name: getattr(pretrain, o.weight_key) for o in objectives()})

    def __getitem__(self, name: str) -> float:
        return self._weights[name]

    def items(self):
        return self._weights.items()

    def __eq__(self, other) -> bool:
        return isinstance(other, LossWeights) and self._weights == other._weights

    def __hash__(self) -> int:
        return hash(tuple(self._weights.items()))

    def __repr__(self) -> str:
        return f"LossWeights({', '.join(f'{k}={v}' for k, v in self._weights.items())})"

    def combine(self, losses: dict):
        """The weighted total of the objectives' losses (tensors or floats), added in the registry's order."""
        total = None
        for name, weight in self._weights.items():
            term = weight * losses[name]
            total = term if total is None else total + term
        return total
