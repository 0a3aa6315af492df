"""A protein-protein interaction table as a graph over the vocabulary, and its node features.

The edge table has one row per interaction: columns ``gene_a``, ``gene_b`` and
``score`` (STRING's combined score, 0..1000). The simulated demo world
(:meth:`ingest.simulate.GeneProgramWorld.ppi_graph`) and the STRING parser
both produce this table, so everything downstream is the same for both.

Nodes are the vocabulary genes in vocabulary order, so row ``i`` of every
per-node array (features, embeddings) belongs to ``genes[i]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from celllm.errors import InputError

EDGE_COLUMNS = ("gene_a", "gene_b", "score")
MAX_SCORE = 1000.0  # STRING scores are integers 0..1000; weights are score / 1000

# Neighbourhood sizes smoothed into the node features (see `node_features`).
FEATURE_HOPS = (1, 2, 3)


def build_gene_graph(edges: pd.DataFrame, genes: list[str], min_score: int = 0, source: str = "edges") -> Data:
    """Undirected interaction graph among `genes`, one node per gene in the given order.

    Keeps rows whose two genes are both listed and whose score is >= `min_score`;
    rows naming other genes are ignored (the table usually covers more proteins
    than the vocabulary). Self loops are dropped; an interaction listed several
    times (in either direction) is kept once with its highest score. Each kept
    interaction is stored in both directions, sorted by (source, target) node.

    Returns a Data with ``edge_index`` (2, 2 * n_interactions) int64,
    ``edge_weight`` (2 * n_interactions,) float32 = score / 1000, ``num_nodes``
    = len(genes) (genes without an interaction are kept as isolated nodes) and
    ``genes``, the gene list. Raises InputError (one line naming `source`) for
    missing columns, non-numeric or missing scores, or when no edge is left.
    """
    genes = [str(g) for g in genes]
    if not genes:
        raise InputError(f"{source}: the gene list is empty")
    node_index = pd.Index(genes)
    if not node_index.is_unique:
        raise InputError(f"{source}: the gene list has duplicates (for example '{node_index[node_index.duplicated()][0]}')")
    if not isinstance(edges, pd.DataFrame):
        raise InputError(f"{source}: expected a table with columns {', '.join(EDGE_COLUMNS)}")
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, edges.columns)) or 'none'})")
    scores = pd.to_numeric(edges["score"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        first = edges["score"].iloc[int(np.flatnonzero(bad)[0])]
        raise InputError(f"{source}: {int(bad.sum())} score(s) are missing or not numbers (for example {first!r})")

    a = node_index.get_indexer(edges["gene_a"].astype(str))
    b = node_index.get_indexer(edges["gene_b"].astype(str))
    keep = (a >= 0) & (b >= 0) & (a != b) & (scores >= min_score)
    if not keep.any():
        raise InputError(
            f"{source}: no interaction left among the {len(genes)} genes with score >= {min_score} "
            f"(of {len(edges)} rows; are the gene names the same kind of symbols as the vocabulary?)"
        )
    low, high = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    low, high, weight = _unique_pairs(low, high, scores[keep], len(genes))

    source_nodes = np.concatenate([low, high])
    target_nodes = np.concatenate([high, low])
    order = np.lexsort((target_nodes, source_nodes))
    edge_index = torch.from_numpy(np.stack([source_nodes[order], target_nodes[order]]).astype(np.int64))
    edge_weight = torch.from_numpy((np.concatenate([weight, weight])[order] / MAX_SCORE).astype(np.float32))
    return Data(edge_index=edge_index, edge_weight=edge_weight, num_nodes=len(genes), genes=genes)


def _unique_pairs(low: np.ndarray, high: np.ndarray, score: np.ndarray, n_nodes: int):
    """Collapse repeated (low, high) pairs, keeping the highest score of each."""
    key = low.astype(np.int64) * n_nodes + high
    order = np.lexsort((-score, key))  # by pair, best score first
    key, score = key[order], score[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, score = key[first], score[first]
    return key // n_nodes, key % n_nodes, score


def isolated_nodes(graph: Data) -> np.ndarray:
    """Boolean mask (num_nodes,) of nodes without any edge."""
    has_edge = np.zeros(graph.num_nodes, dtype=bool)
    has_edge[graph.edge_index.numpy().ravel()] = True
    return ~has_edge


def adjacency(graph: Data) -> sp.csr_matrix:
    """Unweighted symmetric adjacency matrix (num_nodes x num_nodes), CSR float64."""
    src, dst = graph.edge_index.numpy()
    n = graph.num_nodes
    return sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))


def node_features(graph: Data, dim: int, seed: int) -> torch.Tensor:
    """Input node features for GraphMAE: log-degree plus smoothed random projections.

    A PPI network carries no node attributes, so the features describe each
    node's place in the graph:

    * column 0: log(1 + degree);
    * the other columns, split into one block per hop k in FEATURE_HOPS (1, 2, 3):
      ``P^k R`` with ``P = (D + I)^-1 (A + I)`` the random walk with a self
      loop at every node and ``R`` a seeded N(0, 1) matrix, a fresh one per
      block (after FastRP, Chen et al. 2019, "Fast and Accurate Network
      Embeddings via Very Sparse Random Projection", which sums such powers
      instead of concatenating them).

    Why this and not Laplacian eigenvectors: a smoothed random projection of a
    node is close to that of the nodes it shares many short walks with, so
    dense communities (protein complexes, pathways) get similar rows, which is
    the information spectral coordinates carry; but it needs only a few sparse
    products (about a second for 20k nodes and 1M edges), it has no
    eigenvector sign or rotation ambiguity (PPI graphs have many small
    components, hence repeated eigenvalues), and it is deterministic given
    the graph and `seed`. The self loop in P makes every node keep part of its
    own random row, so genes without interactions get distinct rows of their
    own (``P^k R = R`` there) instead of all sharing one feature vector.

    Every column is standardised (zero mean, unit variance). Returns a
    (num_nodes, dim) float32 tensor.
    """
    if dim < 1 + len(FEATURE_HOPS):
        raise ValueError(f"node feature dim must be >= {1 + len(FEATURE_HOPS)} (log-degree + one column per hop), got {dim}")
    A = adjacency(graph)
    degree = np.asarray(A.sum(axis=1)).ravel()
    walk = sp.diags(1.0 / (degree + 1.0)) @ (A + sp.identity(graph.num_nodes, format="csr"))
    walk = walk.tocsr()

    rng = np.random.default_rng(seed)
    blocks = [np.log1p(degree)[:, None]]
    for hop, width in zip(FEATURE_HOPS, _split(dim - 1, len(FEATURE_HOPS))):
        smoothed = rng.standard_normal((graph.num_nodes, width))
        for _ in range(hop):
            smoothed = walk @ smoothed
        blocks.append(smoothed)
    features = np.concatenate(blocks, axis=1)
    return torch.from_numpy(standardise_columns(features).astype(np.float32))


def _split(total: int, parts: int) -> list[int]:
    """`total` columns in `parts` near-equal blocks."""
    return [len(chunk) for chunk in np.array_split(np.arange(total), parts)]


def standardise_columns(x: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Zero mean, unit variance per column, with statistics of `reference` rows (default: all of x)."""
    reference = x if reference is None else reference
    std = reference.std(axis=0)
    return (x - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)
