"""Gene embeddings from a protein-protein interaction network (CellLM's phi_G).

graph       edge table (gene_a, gene_b, score) -> graph over the vocabulary, and its node features
graphmae    GraphMAE model and training loop -> one embedding row per gene
embeddings  the gene-embedding table file (.npz): write, and read in vocabulary order
"""

from celllm.ppi.embeddings import read_gene_embeddings, write_gene_embeddings
from celllm.ppi.graph import build_gene_graph, node_features
from celllm.ppi.graphmae import GraphMAE, GraphMAEConfig, train_gene_embeddings

__all__ = [
    "GraphMAE",
    "GraphMAEConfig",
    "build_gene_graph",
    "node_features",
    "read_gene_embeddings",
    "train_gene_embeddings",
    "write_gene_embeddings",
]
