"""From an interaction table on disk to the gene-embedding table of a vocabulary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.outputs import atomic_path
from celllm.ppi.embeddings import write_gene_embeddings
from celllm.ppi.graph import build_gene_graph
from celllm.ppi.graphmae import GraphMAEConfig, train_gene_embeddings
from celllm.tokens import Vocabulary


def read_edges(path) -> pd.DataFrame:
    """A tab-separated interaction table with columns gene_a, gene_b, score (0..1000, STRING's scale)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: interaction table not found")
    try:
        return pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a tab-separated table ({exc.__class__.__name__})") from None


def embed_vocabulary(
    edges_path, vocab: Vocabulary, out_path, dim: int, cfg: GraphMAEConfig, min_score: int = 0, log_path=None, progress: bool = False
) -> list[float]:
    """Train GraphMAE on the interactions among `vocab` genes; write one `dim`-wide row per gene.

    Returns the per-epoch loss, also written to `log_path` when given.
    """
    graph = build_gene_graph(read_edges(edges_path), vocab.genes, min_score=min_score, source=str(edges_path))
    embeddings, losses = train_gene_embeddings(graph, dim, cfg, progress=progress)
    write_gene_embeddings(out_path, vocab.genes, embeddings)
    if log_path is not None:
        with atomic_path(log_path) as tmp:
            pd.DataFrame({"epoch": range(1, len(losses) + 1), "loss": losses}).to_csv(tmp, index=False)
    return losses
