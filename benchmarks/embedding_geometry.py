"""The shape of an embedding, and what it encodes besides cell types.

CellLM's paper motivates its contrastive loss by isotropy: masked-language-model
embeddings crowd into a narrow cone (BERT's anisotropy), and contrastive learning
spreads them out. These numbers measure that claim on any embedding (cells x dims):

- ``mean_cosine``: mean cosine similarity of random pairs of distinct cells; about 0
  for an isotropic embedding, 1 when every cell points the same way.
- ``alignment`` and ``uniformity`` (Wang & Isola 2020, "Understanding contrastive
  representation learning through alignment and uniformity on the hypersphere"), on
  the L2-normalised embedding: alignment = E ||f(x) - f(y)||^2 over positive pairs,
  here random pairs of cells of the same cell type (no augmentations exist at
  evaluation; lower is better, 0 to 4); uniformity = log E exp(-2 ||f(x) - f(y)||^2)
  over random pairs (lower is more uniform; 0 when all cells coincide).
- ``participation_ratio``: (sum of the covariance eigenvalues)^2 / sum of their
  squares, the number of directions the cells really use (1 for a line, d for an
  isotropic cloud in d dimensions); ``components_90``: how many principal components
  hold 90% of the variance.
- ``knn_f1_<column>``: kNN macro F1 (5-fold, 15 neighbours, as the embedding metrics'
  ``knn_macro_f1``) of every annotation column a dataset has (cell type, tissue, donor,
  sample): what the embedding encodes. A batch column scored high is a batch effect kept.
- ``depth_r_genes`` / ``depth_r_counts``: the largest |Pearson r| between one of the
  leading principal components and log genes detected / log total counts: how much of
  the embedding is sequencing depth.

Pairs are drawn with a seed, so the numbers repeat exactly; the spectrum and
the correlations use no randomness.
"""

from __future__ import annotations

import numpy as np

from benchmarks.embedding_metrics import knn_transfer
from celllm.errors import InputError

N_PAIRS = 20_000  # random pairs for the pair statistics: their standard error is below 0.01
UNIFORMITY_T = 2.0  # Wang & Isola's t
LEADING_COMPONENTS = 5  # principal components compared with sequencing depth
VARIANCE_SHARE = 0.9

KEYS = ("mean_cosine", "alignment", "uniformity", "participation_ratio", "components_90")


def _normalised(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(f"the embedding has {int((norms == 0).sum())} all-zero row(s): no direction to compare")
    return X / norms


def _pairs(n: int, rng: np.random.Generator, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """`n_pairs` random pairs (i, j) of distinct rows of an n-row matrix."""
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # never i
    return i, j


def _same_label_pairs(labels: np.ndarray, rng: np.random.Generator, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Random pairs of distinct rows sharing a label, each label weighted by its rows."""
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        raise InputError("no label has two cells: alignment needs pairs of cells of one type")
    sizes = np.array([len(g) for g in groups], dtype=float)
    chosen = rng.choice(len(groups), n_pairs, p=sizes / sizes.sum())
    first, second = np.empty(n_pairs, dtype=np.int64), np.empty(n_pairs, dtype=np.int64)
    for k, group in enumerate(groups):
        rows = np.flatnonzero(chosen == k)
        a, b = _pairs(len(group), rng, len(rows))
        first[rows], second[rows] = group[a], group[b]
    return first, second


def spectrum(X: np.ndarray) -> np.ndarray:
    """Eigenvalues of the covariance of X, largest first (never negative)."""
    centred = X - X.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return np.clip(singular**2 / max(len(X) - 1, 1), 0, None)


def effective_rank(X: np.ndarray, share: float = VARIANCE_SHARE) -> dict[str, float]:
    values = spectrum(X)
    total = values.sum()
    if total == 0:
        return {"participation_ratio": 0.0, "components_90": 0}
    ratio = float(total**2 / (values**2).sum())
    components = int(np.searchsorted(np.cumsum(values) / total, share - 1e-12) + 1)
    return {"participation_ratio": ratio, "components_90": components}


def geometry(X, cell_types, *, seed: int = 0, n_pairs: int = N_PAIRS) -> dict[str, float]:
    """Isotropy and spread of an embedding (the keys of `KEYS`)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise InputError(f"an embedding needs two or more cells in rows, not shape {X.shape}")
    labels = np.asarray(cell_types).astype(str)
    unit = _normalised(X)
    rng = np.random.default_rng(seed)
    i, j = _pairs(len(X), rng, n_pairs)
    cosine = np.einsum("ij,ij->i", unit[i], unit[j])
    squared = np.clip(2.0 - 2.0 * cosine, 0, None)  # ||u - v||^2 of unit vectors
    a, b = _same_label_pairs(labels, rng, n_pairs)
    aligned = np.clip(2.0 - 2.0 * np.einsum("ij,ij->i", unit[a], unit[b]), 0, None)
    return {
        "mean_cosine": float(cosine.mean()),
        "alignment": float(aligned.mean()),
        "uniformity": float(np.log(np.exp(-UNIFORMITY_T * squared).mean())),
        **effective_rank(X),
    }


def encoded_labels(X, columns: dict[str, np.ndarray], *, seed: int = 0) -> dict[str, float]:
    """kNN macro F1 of each annotation column (name -> one label per cell) with two or more values."""
    scores = {}
    for name, values in columns.items():
        values = np.asarray(values).astype(str)
        if len(np.unique(values)) >= 2:
            scores[f"knn_f1_{name}"] = knn_transfer(X, values, seed=seed)["knn_macro_f1"]
    return scores


def depth_of(counts) -> tuple[np.ndarray, np.ndarray]:
    """(genes detected, total counts) of each cell of a count matrix (dense or scipy sparse, cells in rows)."""
    genes = np.asarray((counts > 0).sum(axis=1)).ravel().astype(float)
    totals = np.asarray(counts.sum(axis=1)).ravel().astype(float)
    return genes, totals


def depth_correlation(X, genes_detected, total_counts, *, components: int = LEADING_COMPONENTS) -> dict[str, float]:
    """Largest |Pearson r| of the leading principal components with log genes detected and log total counts."""
    X = np.asarray(X, dtype=np.float64)
    genes_detected, total_counts = np.asarray(genes_detected, dtype=float), np.asarray(total_counts, dtype=float)
    if not len(genes_detected) == len(total_counts) == len(X):
        raise InputError(f"depth of {len(genes_detected)} cells for an embedding of {len(X)}")
    centred = X - X.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    rank = int((s > 1e-9 * s.max()).sum()) if s.size and s.max() > 0 else 0
    keep = min(components, rank)
    scores = u[:, :keep] * s[:keep]  # the cells' coordinates on the leading components
    return {
        "depth_r_genes": _largest_abs_r(scores, np.log1p(genes_detected)),
        "depth_r_counts": _largest_abs_r(scores, np.log1p(total_counts)),
    }


def _largest_abs_r(scores: np.ndarray, target: np.ndarray) -> float:
    if scores.shape[1] == 0 or target.std() == 0:
        return 0.0
    z = (target - target.mean()) / target.std()
    columns = (scores - scores.mean(axis=0)) / scores.std(axis=0)
    return float(np.abs(columns.T @ z / len(z)).max())
