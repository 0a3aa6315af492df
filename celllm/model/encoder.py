"""The CellLM encoder: gene embedding + expression-bin embedding -> Performer -> [CLS].

c_k = phi_G(gene_k) + phi_E(bin_k); H = Performer(C). The cell embedding is
the final-normalised [CLS] output (or, with `pooling: mean`, the mean of the
gene states). Sizes come from `EncoderConfig`; the
paper's model is dim 512, depth 10, heads 16, dim_head 64, FFN 2048 and 266
random features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from celllm.model.attention import MaskedFavorAttention
from celllm.model.dropout import CellDropout
from celllm.options import Options, option
from celllm.tokens import gene_table_rows, pad_gene_id


@dataclass(frozen=True)
class EncoderConfig(Options):
    label = "encoder option"

    dim: int = option(512, low=1)
    depth: int = option(10, low=1)
    heads: int = option(16, low=1)
    dim_head: int = option(64, low=1)
    ff_mult: int = option(4, low=1)  # FFN width = ff_mult * dim (2048 in the paper)
    nb_features: int = option(266, low=1)  # FAVOR+ random features
    dropout: float = option(0.0, low=0.0, high=1.0, high_open=True)
    feature_redraw_interval: int = option(1000, low=1)  # optimizer steps between random-feature redraws
    # "masked": padding never reaches attention (a cell's embedding is independent of its batch, which
    # divide-and-conquer needs); "released": the authors' model, whose padding keys (every cell padded to
    # tokens.max_len) enter the attention normaliser (celllm.model.attention). Imported checkpoints use it.
    attention: str = option("masked", choices=("masked", "released"))
    # The cell embedding: the [CLS] state (the paper, the released model) or the mean of the cell's gene
    # states. The contrastive loss reads the same one; the tumor-vs-normal head always reads [CLS].
    pooling: str = option("cls", choices=("cls", "mean"))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float, first_site: int):
        super().__init__()
        self.up, self.down = nn.Linear(dim, dim * mult), nn.Linear(dim * mult, dim)
        self.hidden_dropout = CellDropout(dropout, first_site)
        self.out_dropout = CellDropout(dropout, first_site + 1)

    def forward(self, x: torch.Tensor, seeds: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.hidden_dropout(nn.functional.gelu(self.up(x)), seeds)
        return self.out_dropout(self.down(hidden), seeds)


class PerformerLayer(nn.Module):
    """Pre-LayerNorm residual block: attention, then feed-forward."""

    def __init__(self, cfg: EncoderConfig, index: int):
        super().__init__()
        sites = 3 * index  # each dropout of the network draws from its own site
        self.attn_norm = nn.LayerNorm(cfg.dim)
        self.attn = MaskedFavorAttention(cfg.dim, cfg.heads, cfg.dim_head, cfg.nb_features, cfg.dropout, dropout_site=sites)
        self.ff_norm = nn.LayerNorm(cfg.dim)
        self.ff = FeedForward(cfg.dim, cfg.ff_mult, cfg.dropout, first_site=sites + 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None, padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), mask, seeds, padding)
        return x + self.ff(self.ff_norm(x), seeds)


class CellLMEncoder(nn.Module):
    """Token sequences -> contextual token states; `embed` gives the [CLS] cell embedding.

    With `cfg.attention == "released"`, every cell is taken as padded to `pad_to`
    tokens with PAD tokens (gene id `celllm.tokens.pad_gene_id`, bin `pad_bin`), as in the released
    model; the encoder appends one PAD position to the batch to stand for them.
    """

    def __init__(self, n_genes: int, n_bin_tokens: int, cfg: EncoderConfig, pad_to: int | None = None, pad_bin: int | None = None):
        super().__init__()
        if cfg.attention == "released" and (pad_to is None or pad_bin is None):
            raise ValueError("the released attention needs the length cells are padded to and the PAD bin")
        self.cfg, self.n_genes, self.pad_to, self.pad_bin = cfg, n_genes, pad_to, pad_bin
        self.gene_embedding = nn.Embedding(gene_table_rows(n_genes), cfg.dim)  # + [CLS], PAD
        self.bin_embedding = nn.Embedding(n_bin_tokens, cfg.dim)
        self.layers = nn.ModuleList(PerformerLayer(cfg, i) for i in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)

    @classmethod
    def from_config(cls, n_genes: int, cfg) -> CellLMEncoder:
        """The encoder a CellLMConfig (celllm.config) describes: its sizes, its bin tokens, and for the
        released attention the length and PAD bin cells are padded with."""
        return cls(n_genes, cfg.tokens.n_bin_tokens, cfg.encoder, pad_to=cfg.tokens.max_len, pad_bin=cfg.tokens.pad_bin)

    def layer_inputs(self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token vectors, mask) as the first layer takes them. In released mode one PAD position is
        appended: it stands for every padding position of a cell (see celllm.model.attention)."""
        if self.cfg.attention == "released":
            if (mask.sum(1) > self.pad_to).any():
                raise ValueError(f"a cell has more than {self.pad_to} tokens, the length the released attention pads to")
            gene_ids = F.pad(gene_ids, (0, 1), value=pad_gene_id(self.n_genes))
            bins = F.pad(bins, (0, 1), value=self.pad_bin)
            mask = F.pad(mask, (0, 1), value=False)
        return self.gene_embedding(gene_ids) + self.bin_embedding(bins), mask

    def run_layers(
        self, x: torch.Tensor, mask: torch.Tensor, start: int = 0, stop: int | None = None, seeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Layers start..stop-1 over layer inputs `x` with the mask `layer_inputs` gave. A cell's
        stand-in padding position in released mode is its first masked one, so states cached after
        some layers can be re-batched: keep each cell's tokens and the position after them."""
        padding = self.pad_to - mask.sum(1) if self.cfg.attention == "released" else None
        for layer in self.layers[start:stop]:
            x = layer(x, mask, seeds, padding)
        return x

    def _states(self, gene_ids, bins, mask, seeds=None, trainable_layers: int | None = None) -> torch.Tensor:
        """Normalised token states; layers before the last `trainable_layers` (None: all trainable) run without a graph."""
        n = gene_ids.shape[1]
        split = 0 if trainable_layers is None else len(self.layers) - trainable_layers
        with torch.set_grad_enabled(torch.is_grad_enabled() and split == 0):
            x, mask = self.layer_inputs(gene_ids, bins, mask)
            x = self.run_layers(x, mask, 0, split, seeds)
        return self.norm(self.run_layers(x, mask, split, None, seeds))[:, :n]

    def forward(self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor, seeds: torch.Tensor | None = None) -> torch.Tensor:
        """Token states (batch, length, dim). `seeds` (batch,) give each cell its own dropout masks."""
        return self._states(gene_ids, bins, mask, seeds)

    def pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The cell embedding from the token states (`pooling`): the [CLS] state, or the mean of the
        gene states (position 0 and padding left out; a cell without genes keeps its [CLS] state)."""
        if self.cfg.pooling == "cls":
            return states[:, 0]
        genes = mask[:, 1:].unsqueeze(-1).to(states.dtype)
        count = genes.sum(1)
        mean = (states[:, 1:] * genes).sum(1) / count.clamp(min=1)
        return torch.where(count > 0, mean, states[:, 0])

    def embed(self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The cell embedding (`pool`) of the final-normalised states."""
        return self.pool(self._states(gene_ids, bins, mask), mask)

    def embed_last_layers(self, gene_ids: torch.Tensor, bins: torch.Tensor, mask: torch.Tensor, trainable_layers: int = 1) -> torch.Tensor:
        """The cell embedding with autograd through the last `trainable_layers` layers and the final norm only.

        The frozen prefix runs without a graph, which is what makes partial
        fine-tuning (the released recipe: last layer + norm + head) cheap.
        """
        return self.pool(self._states(gene_ids, bins, mask, trainable_layers=trainable_layers), mask)

    def redraw_random_features(self) -> None:
        for layer in self.layers:
            layer.attn.redraw_projection()

    def set_gene_embeddings(self, table: torch.Tensor, trainable: bool) -> None:
        """Load a (n_genes, dim) table, e.g. from GraphMAE on a PPI network."""
        if tuple(table.shape) != (self.n_genes, self.cfg.dim):
            raise ValueError(f"gene embedding table is {tuple(table.shape)}, expected ({self.n_genes}, {self.cfg.dim})")
        with torch.no_grad():
            self.gene_embedding.weight[: self.n_genes].copy_(table)
        self.gene_embedding.weight.requires_grad_(trainable)
