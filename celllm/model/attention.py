"""FAVOR+ self-attention (Performer) that ignores padded keys.

performer-pytorch provides the random-feature softmax kernel used here. Its
own attention layer only zeroes padded *values*: padded keys still enter the
attention normaliser and the key stabiliser (a max over all positions), so a
cell's output would change with the padding its batch needs. This layer
reuses the library's kernel and random matrices and masks the keys properly,
which makes a cell's embedding independent of its batch, the property the
divide-and-conquer contrastive step relies on.
"""

from __future__ import annotations

import torch
from einops import rearrange
from performer_pytorch.performer_pytorch import gaussian_orthogonal_random_matrix, linear_attention, softmax_kernel
from torch import nn

from celllm.model.dropout import CellDropout


class MaskedFavorAttention(nn.Module):
    """Multi-head FAVOR+ attention over a padded batch with a boolean key mask."""

    def __init__(self, dim: int, heads: int, dim_head: int, nb_features: int, dropout: float = 0.0, dropout_site: int = 0):
        super().__init__()
        self.heads, self.dim_head, self.nb_features = heads, dim_head, nb_features
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)  # released config: no qkv bias
        self.to_out = nn.Linear(inner, dim)
        self.dropout = CellDropout(dropout, dropout_site)
        self.register_buffer("projection_matrix", gaussian_orthogonal_random_matrix(nb_features, dim_head))

    @torch.no_grad()
    def redraw_projection(self) -> None:
        """Draw new random features (from torch's global RNG: seed it for reproducibility)."""
        new = gaussian_orthogonal_random_matrix(self.nb_features, self.dim_head, device=self.projection_matrix.device)
        self.projection_matrix.copy_(new)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, length, dim); mask: (batch, length) True on real tokens, position 0 real.

        `seeds` (batch,) make dropout a function of each cell (see celllm.model.dropout).
        """
        q, k, v = rearrange(self.to_qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        key_mask = mask[:, None, :, None]
        # Padded keys copy the [CLS] key so the library's key stabiliser (a max over
        # positions) sees only real tokens; their features are zeroed below.
        k = torch.where(key_mask, k, k[:, :, :1])
        # The random-feature exponentials overflow easily in bf16: keep this part in float32
        # (or float64, where the model runs in float64).
        with torch.autocast(device_type=x.device.type, enabled=False):
            wide = torch.promote_types(q.dtype, torch.float32)
            q, k, v = q.to(wide), k.to(wide), v.to(wide)
            q_prime = softmax_kernel(q, projection_matrix=self.projection_matrix, is_query=True)
            k_prime = softmax_kernel(k, projection_matrix=self.projection_matrix, is_query=False)
            k_prime = k_prime * key_mask.to(k_prime.dtype)
            out = linear_attention(q_prime, k_prime, v)
        return self.dropout(self.to_out(rearrange(out, "b h n d -> b n (h d)").to(x.dtype)), seeds)
