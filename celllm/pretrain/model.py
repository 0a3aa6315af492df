"""The encoder with its three pretraining heads."""

from __future__ import annotations

import torch
from torch import nn

from celllm.config import CellLMConfig
from celllm.model import CellLMEncoder


class CellLMForPretraining(nn.Module):
    """Encoder + contrastive projection, masked-bin and tumor-vs-normal heads.

    The masked-bin head predicts one of the expression bins (the released model
    keeps a 512 -> 8 head, i.e. bin classes); the tissue head reads [CLS].
    """

    def __init__(self, n_genes: int, cfg: CellLMConfig):
        super().__init__()
        dim = cfg.encoder.dim
        self.encoder = CellLMEncoder(n_genes, cfg.tokens.n_bin_tokens, cfg.encoder, pad_to=cfg.tokens.max_len, pad_bin=cfg.tokens.pad_bin)
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, cfg.pretrain.proj_dim))
        self.mlm_head = nn.Linear(dim, cfg.pretrain.mlm_classes or cfg.tokens.n_bins)
        self.tissue_head = nn.Linear(dim, 2)

    def forward(
        self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(gene_ids, bins, mask, seeds)
        cls = hidden[:, 0]
        return {"z": self.projection(cls), "mlm_logits": self.mlm_head(hidden), "tissue_logits": self.tissue_head(cls)}
