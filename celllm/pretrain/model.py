"""The encoder with the pretraining heads, one per registered objective (celllm.pretrain.objectives)."""

from __future__ import annotations

import torch
from torch import nn

from celllm.config import CellLMConfig
from celllm.model import CellLMEncoder
from celllm.pretrain.objectives import objectives


class CellLMForPretraining(nn.Module):
    """Encoder + one head per objective: today the contrastive projection, the masked-bin and the
    tumor-vs-normal heads (attributes `projection`, `mlm_head`, `tissue_head`: each objective's `head_name`).

    Heads are built in the registry's order, so the random initialisation follows it too.
    Inference needs none of them: `celllm.checkpoint.load_encoder` builds the encoder alone.
    """

    def __init__(self, n_genes: int, cfg: CellLMConfig):
        super().__init__()
        self.encoder = CellLMEncoder.from_config(n_genes, cfg)
        for objective in objectives():
            self.add_module(objective.head_name, objective.head(cfg))

    def forward(
        self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Every objective's head output (`Objective.output` -> tensor)."""
        hidden = self.encoder(gene_ids, bins, mask, seeds)
        read = {"cell": self.encoder.pool(hidden, mask), "cls": hidden[:, 0], "tokens": hidden}
        return {o.output: getattr(self, o.head_name)(read[o.reads]) for o in objectives()}
