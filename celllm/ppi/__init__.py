"""Gene embeddings from a protein-protein interaction network (CellLM's phi_G).

config      GraphMAE's options (no torch: the workflow reads them when it parses the config)
graph       edge table (gene_a, gene_b, score) -> graph over the vocabulary, and its node features
graphmae    GraphMAE model and training loop -> one embedding row per gene
embeddings  the gene-embedding table file (.npz): write, and read in vocabulary order

The names below load their module on first use: importing the package, or its config, does not
import torch_geometric (4 s, in every Snakemake start that parses the workflow).
"""

from importlib import import_module

_WHERE = {
    "GraphMAE": "graphmae",
    "GraphMAEConfig": "config",
    "build_gene_graph": "graph",
    "node_features": "graph",
    "read_gene_embeddings": "embeddings",
    "train_gene_embeddings": "graphmae",
    "write_gene_embeddings": "embeddings",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"celllm.ppi.{_WHERE[name]}"), name)
