"""Dropout whose mask depends on the cell, not on the batch.

torch's dropout draws one mask for the whole batch from a global random
stream, so a cell's mask changes with the cells around it and with how a
batch is cut into sub-batches. Divide-and-conquer pretraining is only exact
if a cell's forward pass is the same whichever sub-batch holds it, so here
each element's keep/drop decision is a hash of (cell seed, token position,
feature, dropout site). The hash is counter-based (no state), costs a few
integer operations per element, and is only evaluated when dropout is on.
"""

from __future__ import annotations

import torch
from torch import nn

_MASK31 = 0x7FFFFFFF
_MULT = 0x45D9F3B  # odd multiplier < 2**27: products of 31-bit values stay inside int64


def _mix(x: torch.Tensor) -> torch.Tensor:
    """Avalanche a non-negative 31-bit int64 tensor (two xor-shift-multiply rounds)."""
    x = ((x ^ (x >> 16)) * _MULT) & _MASK31
    x = ((x ^ (x >> 16)) * _MULT) & _MASK31
    return x ^ (x >> 16)


def uniform_from_seeds(seeds: torch.Tensor, length: int, width: int, site: int) -> torch.Tensor:
    """(batch, length, width) uniforms in [0, 1), a pure function of each row's seed and the site."""
    device = seeds.device
    cell = _mix((seeds.to(torch.int64) & _MASK31) ^ _mix(torch.tensor(site, device=device)))
    position = torch.arange(length, device=device, dtype=torch.int64)
    feature = torch.arange(width, device=device, dtype=torch.int64)
    h = _mix(cell[:, None] ^ position[None, :])  # (batch, length)
    h = _mix(h[:, :, None] ^ (feature[None, None, :] * 0x9E37 & _MASK31))
    return h.to(torch.float32) / float(_MASK31 + 1)


class CellDropout(nn.Module):
    """Inverted dropout with per-cell masks; plain dropout when no seeds are given."""

    def __init__(self, p: float, site: int):
        super().__init__()
        self.p, self.site = p, site

    def forward(self, x: torch.Tensor, seeds: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if seeds is None:
            return nn.functional.dropout(x, self.p, training=True)
        keep = uniform_from_seeds(seeds, x.shape[1], x.shape[2], self.site) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)
