"""GraphMAE's options, apart from the model so that reading a config needs neither torch nor torch_geometric."""

from __future__ import annotations

from dataclasses import dataclass

from celllm.options import Options, option


@dataclass(frozen=True)
class GraphMAEConfig(Options):
    """GraphMAE hyper-parameters (the GraphMAE paper's GAT defaults where it has them)."""

    label = "GraphMAE option"

    hidden_dim: int = option(256, low=1)  # width of the encoder's inner layers (all heads together)
    num_layers: int = option(2, low=1)  # GAT layers in the encoder; its last one outputs the embedding size
    heads: int = option(4, low=1)  # attention heads per encoder layer, concatenated
    mask_rate: float = option(
        0.5, low=0.0, low_open=True, high=1.0, high_open=True
    )  # share of the nodes with interactions masked each epoch
    replace_rate: float = option(0.1, low=0.0, high=1.0, high_open=True)  # share of the masked nodes given another node's features
    alpha: float = option(2.0, low=1.0)  # scaled cosine error exponent (gamma in the GraphMAE paper)
    lr: float = option(1e-3, low=0.0, low_open=True)
    weight_decay: float = option(2e-4, low=0.0)
    epochs: int = option(300, low=1)
    feature_dim: int = option(64, low=1)  # input node feature size (see celllm.ppi.graph.node_features)
    dropout: float = option(0.1, low=0.0, high=1.0, high_open=True)  # on layer inputs and on attention weights
    seed: int = option(0, low=0)

    def validate(self):
        if self.hidden_dim % self.heads:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must be divisible by heads ({self.heads})")
