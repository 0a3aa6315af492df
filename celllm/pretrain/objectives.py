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

from celllm.tokens import TokenConfig, TokenizedCells, pad_batch

IGNORE = -100  # label value that cross-entropy skips

TISSUE_CODES = {"normal": 0, "tumor": 1}


@dataclass
class ViewBatch:
    """2N sequences for N cells: cell c's views sit at rows 2c and 2c + 1."""

    sequences: list[tuple[np.ndarray, np.ndarray]]  # (gene ids, input bins) per view
    targets: list[np.ndarray]  # per view: true bin at masked positions, IGNORE elsewhere
    tissue: np.ndarray  # (2N,) 0 normal, 1 tumor, IGNORE unknown
    seeds: np.ndarray  # (2N,) per-view dropout seeds (celllm.model.dropout)

    @property
    def n_cells(self) -> int:
        return len(self.sequences) // 2

    def cells(self, positions) -> "ViewBatch":
        """The views of the cells at these positions of the batch (a data-parallel shard)."""
        rows = np.stack([2 * np.asarray(positions), 2 * np.asarray(positions) + 1], axis=1).ravel()
        return ViewBatch([self.sequences[r] for r in rows], [self.targets[r] for r in rows], self.tissue[rows], self.seeds[rows])

    def chunk(self, start_cell: int, stop_cell: int, vocab_size: int, cfg: TokenConfig) -> dict[str, torch.Tensor]:
        """Padded tensors for the views of cells [start_cell, stop_cell)."""
        rows = slice(2 * start_cell, 2 * stop_cell)
        batch = pad_batch(self.sequences[rows], vocab_size, cfg)
        targets = torch.full(batch["bins"].shape, IGNORE, dtype=torch.int64)
        for i, t in enumerate(self.targets[rows]):
            targets[i, 1 : 1 + len(t)] = torch.from_numpy(t)
        batch["mlm_targets"] = targets
        batch["tissue"] = torch.from_numpy(self.tissue[rows])
        batch["seeds"] = torch.from_numpy(self.seeds[rows])
        return batch


def make_views(
    cells: TokenizedCells, indices: np.ndarray, tissue: np.ndarray, rng: np.random.Generator, keep: float, mask_ratio: float, cfg: TokenConfig
) -> ViewBatch:
    sequences, targets = [], []
    for i in indices:
        genes, bins = cells.cell(int(i))
        for _ in range(2):
            kept = rng.random(len(genes)) < keep
            if len(genes) and not kept.any():  # a view keeps at least one gene
                kept[rng.integers(len(genes))] = True
            g, b = genes[kept], bins[kept].copy()
            masked = rng.random(len(b)) < mask_ratio
            target = np.where(masked, b, IGNORE)
            b[masked] = cfg.mask_bin
            sequences.append((g, b))
            targets.append(target)
    seeds = rng.integers(0, 2**31, size=len(sequences), dtype=np.int64)
    return ViewBatch(sequences, targets, np.repeat(tissue[indices], 2), seeds)


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
    mlm = F.cross_entropy(at_least_float32(logits.reshape(-1, logits.shape[-1])), batch["mlm_targets"].reshape(-1), ignore_index=IGNORE, reduction="sum")
    tissue = F.cross_entropy(at_least_float32(outputs["tissue_logits"]), batch["tissue"], ignore_index=IGNORE, reduction="sum")
    return {
        "mlm_sum": mlm,
        "mlm_count": (batch["mlm_targets"] != IGNORE).sum(),
        "tissue_sum": tissue,
        "tissue_count": (batch["tissue"] != IGNORE).sum(),
    }
