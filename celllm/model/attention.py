"""FAVOR+ self-attention (Performer), in two modes.

performer-pytorch provides the random-feature softmax kernel used here. Its
own attention layer only zeroes padded *values*: padded keys still enter the
attention normaliser and the key stabiliser (a max over all positions), so a
cell's output would change with the padding its batch needs.

- masked (this project's default): padded keys are masked out as well, which
  makes a cell's embedding independent of its batch, the property the
  divide-and-conquer contrastive step relies on;
- released (the authors' model, `EncoderConfig.attention = "released"`): the
  released code pads every cell to 6,000 tokens and lets those padding keys in.
  Every padding position of a cell holds one and the same state, so here they are
  one position (the cell's first padding position) counted as many times as the
  cell has padding positions: the same numbers at the cost of the real tokens.
  Its key features are stabilised as the authors' own copy of the kernel does
  (OpenBioMed `performer_celllm.py`, like scBERT's): `exp(dash - diag - max) + eps`
  with ONE max over the whole key tensor of the batch (every cell, head, position,
  padding included, and random feature), where performer-pytorch 1.1.4 takes one
  per cell and head. The max cancels but for `eps`, which is counted at all 6,000
  padded positions, so a cell's output depends on its batch mates (with trained
  weights by up to ~0.1-0.3 on [CLS], README): the released inference batch (`celllm.released.RELEASED_BATCH`)
  reproduces the authors' numbers. For measurement only (benchmarks/perf/released_batch.py),
  an instance's `released_key_max = "cell"` takes performer-pytorch 1.1.4's max per cell and
  head instead; no config reaches it, and released mode always runs with "batch".
"""

from __future__ import annotations

import torch
from einops import rearrange
from performer_pytorch.performer_pytorch import gaussian_orthogonal_random_matrix, linear_attention, softmax_kernel
from torch import nn

from celllm.model.dropout import CellDropout


class MaskedFavorAttention(nn.Module):
    """Multi-head FAVOR+ attention over a padded batch with a boolean key mask."""

    # The released mode's key stabiliser: "batch" (the authors' kernel); "cell", one max per cell and head
    # (performer-pytorch 1.1.4), is a switch for measuring the batch dependence only, set on an instance.
    released_key_max = "batch"

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

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None, padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (batch, length, dim); mask: (batch, length) True on real tokens, position 0 real.

        `seeds` (batch,) make dropout a function of each cell (see celllm.model.dropout).
        `padding` (batch,) selects the released mode: how many padding positions each cell
        has in the released model; its first padding position (index mask.sum(1)) stands for them all.
        """
        if padding is not None:
            return self.dropout(self.to_out(self._released(x, mask, padding)), seeds)
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

    def _released(self, x: torch.Tensor, mask: torch.Tensor, padding: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        """The released FAVOR+ over each cell padded to its released length, computed on the real tokens and
        one padding position that counts `padding` times (values masked, keys not), the keys stabilised by
        one max over the whole batch as the authors' kernel does."""
        q, k, v = rearrange(self.to_qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        count = mask.to(torch.float64)
        count[torch.arange(len(mask), device=mask.device), mask.sum(1)] = padding.to(torch.float64)  # the stand-in padding position
        with torch.autocast(device_type=x.device.type, enabled=False):
            wide = torch.promote_types(q.dtype, torch.float32)
            q, k, v = q.to(wide), k.to(wide), v.to(wide) * mask[:, None, :, None].to(wide)
            count = count.to(wide)[:, None, :, None]
            q_prime = softmax_kernel(q, projection_matrix=self.projection_matrix, is_query=True)
            # the authors' key features: their stabiliser is one max over the batch's whole key tensor (every counted position)
            normaliser = k.shape[-1] ** -0.25
            dash = torch.einsum("bhnd,jd->bhnj", normaliser * k, self.projection_matrix.to(wide))
            diag = (k**2).sum(-1, keepdim=True) * normaliser**2 / 2
            counted = count > 0
            counted_dash = dash.masked_fill(~counted, float("-inf"))
            if self.released_key_max == "batch":
                stabiliser = counted_dash.amax()
            elif self.released_key_max == "cell":
                stabiliser = counted_dash.amax(dim=(-2, -1), keepdim=True)
            else:
                raise ValueError(f"released_key_max must be 'batch' or 'cell', not {self.released_key_max!r}")
            k_prime = self.nb_features**-0.5 * (torch.exp((dash - diag - stabiliser).masked_fill(~counted, float("-inf"))) + eps)
            normaliser_keys = (k_prime * count).sum(dim=-2)
            context = torch.einsum("bhnd,bhne->bhde", k_prime, v)
            out = torch.einsum("bhde,bhnd->bhne", context, q_prime) / torch.einsum("bhnd,bhd->bhn", q_prime, normaliser_keys)[..., None]
        return rearrange(out, "b h n d -> b n (h d)").to(x.dtype)
