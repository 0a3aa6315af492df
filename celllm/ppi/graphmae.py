"""GraphMAE: masked graph autoencoder that turns a PPI graph into gene embeddings.

CellLM's gene embeddings (phi_G) come from GraphMAE (Hou et al. 2022,
"GraphMAE: Self-Supervised Masked Graph Autoencoders", arXiv 2205.10803)
trained on a protein-protein interaction network. The recipe, as in the
GraphMAE paper:

1. hide the input features of a random `mask_rate` of the nodes: most get a
   learnable [MASK] vector, a `replace_rate` share get another node's features
   (so the encoder cannot just learn to spot the [MASK] token);
2. encode the whole graph with a GAT;
3. project encoder -> decoder and *re-mask*: the masked nodes' states are set
   to zero, so the decoder must rebuild them from their neighbours;
4. decode with a single GAT layer back to the feature size;
5. loss = scaled cosine error over the masked nodes,
   mean((1 - cos(x, x_hat)) ** alpha).

The gene embedding is the trained encoder's output on the unmasked graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv
from tqdm.auto import tqdm

from celllm.ppi.config import GraphMAEConfig
from celllm.ppi.graph import isolated_nodes, node_features, standardise_columns

# Random stream tag of the rows given to genes without interactions (see
# `finalise_embeddings`), so they never reuse the node-feature random numbers.
_ISOLATED_STREAM = 1


def scaled_cosine_error(x: torch.Tensor, x_hat: torch.Tensor, alpha: float) -> torch.Tensor:
    """mean over rows of (1 - cos(x, x_hat)) ** alpha.

    alpha > 1 down-weights rows that are already nearly right, so training
    focuses on the hard ones (GraphMAE's replacement for the MSE).
    """
    cosine = F.cosine_similarity(x, x_hat, dim=-1)
    return (1.0 - cosine).clamp_min(0.0).pow(alpha).mean()


class GATEncoder(nn.Module):
    """Stack of GAT layers with concatenated heads and PReLU, dropout on every layer's input."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, heads: int, dropout: float):
        super().__init__()
        if out_dim % heads:
            raise ValueError(f"embedding size ({out_dim}) must be divisible by the number of heads ({heads})")
        sizes = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.convs = nn.ModuleList(GATConv(sizes[i], sizes[i + 1] // heads, heads=heads, dropout=dropout) for i in range(num_layers))
        self.activations = nn.ModuleList(nn.PReLU() for _ in range(num_layers))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for conv, activation in zip(self.convs, self.activations):
            x = F.dropout(x, self.dropout, self.training)
            x = activation(conv(x, edge_index))
        return x


class GraphMAE(nn.Module):
    """Masked feature reconstruction with a GAT encoder and a single-layer GAT decoder."""

    def __init__(self, feature_dim: int, out_dim: int, cfg: GraphMAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = GATEncoder(feature_dim, cfg.hidden_dim, out_dim, cfg.num_layers, cfg.heads, cfg.dropout)
        self.mask_token = nn.Parameter(torch.zeros(1, feature_dim))
        self.encoder_to_decoder = nn.Linear(out_dim, out_dim, bias=False)
        # One head back to the feature size, no activation: features are standardised reals.
        self.decoder = GATConv(out_dim, feature_dim, heads=1, dropout=cfg.dropout)

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Encoder output for every node (the gene embedding before rescaling)."""
        return self.encoder(x, edge_index)

    def mask_features(self, x: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Hide the features of a random `mask_rate` share of `candidates`.

        Returns (masked features, masked node ids). Of the masked nodes, a
        `replace_rate` share get the features of uniformly drawn nodes, the
        rest the learnable [MASK] token.
        """
        n_mask = max(1, int(round(self.cfg.mask_rate * len(candidates))))
        order = torch.randperm(len(candidates), generator=generator)[:n_mask]
        masked = candidates[order.to(candidates.device)]
        n_replace = int(round(self.cfg.replace_rate * n_mask))
        donors = torch.randint(0, x.shape[0], (n_replace,), generator=generator).to(x.device)

        x_masked = x.clone()
        token_nodes, replaced_nodes = masked[n_replace:], masked[:n_replace]
        x_masked[token_nodes] = self.mask_token.to(x.dtype).expand(len(token_nodes), -1)
        x_masked[replaced_nodes] = x[donors]
        return x_masked, masked

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One masked-reconstruction pass; returns the scaled cosine error over the masked nodes."""
        x_masked, masked = self.mask_features(x, candidates, generator)
        hidden = self.encoder_to_decoder(self.encoder(x_masked, edge_index))
        # Re-mask: the decoder gets nothing from a masked node itself, only from its neighbours.
        keep = torch.ones(x.shape[0], 1, device=x.device, dtype=hidden.dtype)
        keep[masked] = 0.0
        reconstruction = self.decoder(hidden * keep, edge_index)
        return scaled_cosine_error(x[masked], reconstruction[masked], self.cfg.alpha)


def train_gene_embeddings(
    graph: Data, out_dim: int, cfg: GraphMAEConfig, progress: bool = False, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, list[float]]:
    """Train GraphMAE full-batch on `graph`; return (embeddings, per-epoch loss).

    Embeddings are (num_nodes, out_dim) float32, row i for node i, finished by
    `finalise_embeddings`: columns standardised over the genes with
    interactions, and a seeded N(0, 1) row for each gene without any.

    Only genes with at least one interaction are masked: a gene without
    neighbours cannot be rebuilt from its neighbourhood, so its loss would be
    noise. Deterministic on CPU for a fixed `cfg.seed` (initialisation and
    dropout use a seeded torch RNG, masking its own seeded generator); the
    caller's global torch RNG state is left as it was.
    """
    features = node_features(graph, cfg.feature_dim, cfg.seed)
    isolated = isolated_nodes(graph)
    if isolated.all():
        raise ValueError("the graph has no edges; GraphMAE needs interactions to learn from")
    device = torch.device(device)
    x = features.to(device)
    edge_index = graph.edge_index.to(device)
    candidates = torch.from_numpy(np.flatnonzero(~isolated)).to(device)

    history: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = GraphMAE(cfg.feature_dim, out_dim, cfg).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(cfg.seed)
        bar = tqdm(range(cfg.epochs), desc="graphmae", unit="epoch", disable=not progress)
        for epoch in bar:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = model(x, edge_index, candidates, generator)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not np.isfinite(value):
                raise RuntimeError(f"GraphMAE loss became {value} at epoch {epoch}; try a lower lr")
            history.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
        model.eval()
        with torch.no_grad():
            hidden = model.embed(x, edge_index).cpu().numpy()
    return finalise_embeddings(hidden, isolated, cfg.seed), history


def finalise_embeddings(hidden: np.ndarray, isolated: np.ndarray, seed: int) -> np.ndarray:
    """Rescale encoder outputs for use as CellLM gene embeddings; fill genes without interactions.

    Scaling: each column is standardised (zero mean, unit variance) over the
    genes with interactions, so rows have about unit scale per dimension like
    the N(0, 1)-initialised expression-bin embeddings they are added to in
    CellLM; neither term drowns the other. Standardising also removes the
    direction every encoder output shares, so cosine similarity between rows
    reflects how genes differ.

    Genes without interactions: the graph says nothing about them, so they get
    what CellLM would give any gene without prior knowledge, a seeded N(0, 1)
    row (drawn in node order from `seed`). That keeps every gene distinct (one
    shared row would make CellLM unable to tell them apart) at the same scale
    as the others, and claims no similarity the data does not support.
    """
    hidden = hidden.astype(np.float64)
    scaled = standardise_columns(hidden, reference=hidden[~isolated])
    rng = np.random.default_rng([seed, _ISOLATED_STREAM])
    scaled[isolated] = rng.standard_normal((int(isolated.sum()), hidden.shape[1]))
    return scaled.astype(np.float32)
