"""Zero-shot embedding metrics: does an embedding keep cell types apart and mix batches?

The scib / scib-metrics / cz-benchmarks style of evaluation (Luecken et al. 2022),
on an embedding matrix X (cells x dims), cell-type labels and, optionally, batches.

Who computes what:

- ``leiden_agreement``: sklearn finds the exact kNN, igraph clusters the graph with
  Leiden (as scanpy's igraph flavour does, without its per-process numba compilation);
  sklearn scores ARI and NMI.
- ``label_silhouette`` and ``batch_silhouette``: sklearn's silhouette (euclidean),
  scaled as scib does.
- ``knn_transfer``: sklearn's kNN classifier under stratified cross-validation.
- ``ilisi``: our own numpy LISI (below). scib-metrics computes it with jax;
  installing scib-metrics pulls jax + jaxlib (about 90 MB of wheels, 380 MB
  installed) into a project that otherwise has no use for them, to run a 2-core CPU
  CI. The LISI is about 40 lines and follows scib-metrics' algorithm step for step:
  on 2,000-cell test sets with 2-5 batches its per-cell LISI agreed with
  scib-metrics 0.5.10 to 3e-5 (their float32); the tests check hand-computed answers.

Summary scores use scib's weighting: ``bio`` = mean(ARI, NMI, ASW label),
``batch`` = mean(ASW batch, iLISI), ``overall`` = 0.6 bio + 0.4 batch (``bio``
alone without batches). These are a subset of scib's full metric set (no cLISI,
isolated labels, graph connectivity or k-means NMI/ARI), so the numbers compare
between models here, not with published scib tables. kNN transfer is reported
beside them and kept out of ``bio``, which stays scib's.

Every metric is higher-is-better and lies in [0, 1] (ARI can dip below 0).
Results are deterministic for a given seed: the kNN are exact, Leiden and the
cross-validation folds are seeded.
"""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    f1_score,
    normalized_mutual_info_score,
    silhouette_samples,
    silhouette_score,
)
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from celllm.errors import InputError

# scib's grid (cluster_optimal_resolution): 0.1, 0.2, ..., 2.0, kept whole: the graph is
# built once and each Leiden run is fast.
RESOLUTIONS = tuple(round(0.1 * i, 1) for i in range(1, 21))
LISI_PERPLEXITY = 30  # scib's; the LISI kNN has 3 x perplexity = 90 neighbours
SCORE_WEIGHTS = {"bio": 0.6, "batch": 0.4}


# The keys of `embedding_metrics`, in order; what each is (label, range) is in benchmarks.metrics.METRICS.
# Stochastic ones depend on the seed (Leiden, the cross-validation folds); the rest do not.
KEYS = ("ari", "nmi", "asw_label", "knn_accuracy", "knn_macro_f1", "asw_batch", "ilisi", "bio", "batch", "overall")
STOCHASTIC = ("ari", "nmi", "knn_accuracy", "knn_macro_f1", "bio", "overall")


def embedding_metrics(X, cell_types, batches=None, *, seed: int = 0, n_neighbors: int = 15) -> dict[str, float]:
    """All metrics of an embedding, keys in the order of `KEYS`.

    Batch metrics (``asw_batch``, ``ilisi``, ``batch``) are computed only when
    `batches` holds at least 2 distinct batches; otherwise ``overall`` = ``bio``.
    `n_neighbors` is the k of the Leiden graph and of the kNN classifier.
    """
    X, cell_types = _embedding(X), _labels(cell_types, "cell_types")
    _same_length(X, cell_types, "cell_types")
    _at_least_two(cell_types, "cell types")
    if batches is not None:
        batches = _labels(batches, "batches")
        _same_length(X, batches, "batches")
    with_batches = batches is not None and len(np.unique(batches)) >= 2
    out = _seedless(X, cell_types, batches if with_batches else None)
    leiden = leiden_agreement(X, cell_types, seed=seed, n_neighbors=n_neighbors)
    out.update(ari=leiden["ari"], nmi=leiden["nmi"])
    out.update(knn_transfer(X, cell_types, seed=seed, n_neighbors=n_neighbors))
    out["bio"] = float(np.mean([out["ari"], out["nmi"], out["asw_label"]]))
    if with_batches:
        out["batch"] = float(np.mean([out["asw_batch"], out["ilisi"]]))
        out["overall"] = SCORE_WEIGHTS["bio"] * out["bio"] + SCORE_WEIGHTS["batch"] * out["batch"]
    else:
        out["overall"] = out["bio"]
    return {key: float(out[key]) for key in KEYS if key in out}


_SEEDLESS_CACHE: dict = {}


def _seedless(X: np.ndarray, cell_types: np.ndarray, batches: np.ndarray | None) -> dict:
    """The metrics that do not depend on the seed (silhouettes, iLISI), computed once per embedding:
    a run scores the same embedding under several seeds, and at Zheng68k's 68k cells the
    silhouette alone is minutes (quadratic in cells)."""
    key = hashlib.sha256(
        b"".join(
            [
                np.ascontiguousarray(X).tobytes(),
                "\0".join(cell_types).encode(),
                "\0".join(batches).encode() if batches is not None else b"-",
            ]
        )
    ).hexdigest()
    if key not in _SEEDLESS_CACHE:
        out = {"asw_label": label_silhouette(X, cell_types)}
        if batches is not None:
            out.update(asw_batch=batch_silhouette(X, cell_types, batches), ilisi=ilisi(X, batches))
        _SEEDLESS_CACHE.clear()  # one embedding at a time: a run's seeds come one after another
        _SEEDLESS_CACHE[key] = out
    return dict(_SEEDLESS_CACHE[key])


def knn_graph(X, n_neighbors: int = 15):
    """The undirected kNN graph of an embedding as an igraph Graph: exact neighbours (sklearn), an
    edge wherever either cell is among the other's k nearest (the binary form of scanpy's graph)."""
    import igraph

    X = _embedding(X)
    k = min(n_neighbors, len(X) - 1)
    adjacency = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors_graph(X, mode="connectivity")
    adjacency.setdiag(0)
    adjacency = sp.triu(adjacency.maximum(adjacency.T), k=1).tocoo()
    return igraph.Graph(n=len(X), edges=np.column_stack([adjacency.row, adjacency.col]).tolist(), directed=False)


def leiden_clusters(graph, resolution: float, seed: int = 0) -> np.ndarray:
    """Leiden clusters (modularity, 2 iterations, as scanpy's igraph flavour) of `graph`, seeded."""
    import random

    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        partition = graph.community_leiden(objective_function="modularity", resolution=resolution, n_iterations=2)
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(partition.membership)


def leiden_agreement(X, cell_types, *, seed: int = 0, n_neighbors: int = 15, resolutions=RESOLUTIONS) -> dict[str, float]:
    """ARI and NMI between cell types and Leiden clusters, at the resolution with the best NMI (scib's way).

    The graph is built once (`knn_graph`) and clustered by igraph's Leiden at each
    resolution; sklearn scores. Not scanpy's `neighbors` + `leiden`: they give the same
    kind of graph with UMAP weights, but cost a numba compilation of several seconds in
    every process, which a workflow running one job per model pays over and over.
    Returns ``ari``, ``nmi`` and the chosen ``resolution`` (the lowest on ties).
    """
    if importlib.util.find_spec("igraph") is None:
        raise ImportError("leiden_agreement needs the igraph package for Leiden clustering: pip install igraph")
    X, cell_types = _embedding(X), _labels(cell_types, "cell_types")
    _same_length(X, cell_types, "cell_types")
    graph = knn_graph(X, n_neighbors)
    best = None
    for resolution in resolutions:
        clusters = leiden_clusters(graph, resolution, seed)
        nmi = normalized_mutual_info_score(cell_types, clusters)
        if best is None or nmi > best["nmi"]:
            best = {"ari": adjusted_rand_score(cell_types, clusters), "nmi": nmi, "resolution": resolution}
    return {key: float(value) for key, value in best.items()}


def label_silhouette(X, cell_types) -> float:
    """scib's ASW label: (silhouette of the cell types + 1) / 2, euclidean, by sklearn."""
    X, cell_types = _embedding(X), _labels(cell_types, "cell_types")
    _same_length(X, cell_types, "cell_types")
    _at_least_two(cell_types, "cell types")
    if len(np.unique(cell_types)) >= len(X):
        raise InputError("label_silhouette: every cell has its own cell type; the silhouette is undefined")
    return float((silhouette_score(X, cell_types, metric="euclidean") + 1) / 2)


def knn_transfer(X, cell_types, *, seed: int = 0, n_neighbors: int = 15, n_folds: int = 5) -> dict[str, float]:
    """Cross-validated kNN label transfer by sklearn: accuracy and macro F1 over the pooled out-of-fold predictions.

    Folds are stratified and shuffled with `seed`; their number is min(`n_folds`,
    cells of the smallest cell type), so a rare type is in every test fold it can be.
    A cell type with a single cell cannot be held out and trained on: InputError.
    """
    X, cell_types = _embedding(X), _labels(cell_types, "cell_types")
    _same_length(X, cell_types, "cell_types")
    _at_least_two(cell_types, "cell types")
    types, counts = np.unique(cell_types, return_counts=True)
    if counts.min() < 2:
        raise InputError(
            f"knn_transfer: cell type '{types[counts.argmin()]}' has a single cell; cross-validation needs at least 2 cells of each type (drop or merge it)"
        )
    folds = StratifiedKFold(n_splits=int(min(n_folds, counts.min())), shuffle=True, random_state=seed)
    predicted = np.empty_like(cell_types)
    for train, test in folds.split(X, cell_types):
        classifier = KNeighborsClassifier(n_neighbors=min(n_neighbors, len(train)))
        predicted[test] = classifier.fit(X[train], cell_types[train]).predict(X[test])
    return {
        "knn_accuracy": float(accuracy_score(cell_types, predicted)),
        "knn_macro_f1": float(f1_score(cell_types, predicted, average="macro", zero_division=0)),
    }


def batch_silhouette(X, cell_types, batches) -> float:
    """scib's ASW batch: within each cell type, 1 - |silhouette of the batches| per cell (sklearn),
    averaged per cell type, then over cell types.

    Cell types seen in a single batch (or with one cell per batch) are skipped, as in
    scib; if none is left the metric is undefined: InputError. 1 = batches mixed.
    """
    X, cell_types, batches = _embedding(X), _labels(cell_types, "cell_types"), _labels(batches, "batches")
    _same_length(X, cell_types, "cell_types")
    _same_length(X, batches, "batches")
    _at_least_two(batches, "batches")
    per_type = []
    for cell_type in np.unique(cell_types):
        rows = cell_types == cell_type
        n_batches = len(np.unique(batches[rows]))
        if n_batches == 1 or n_batches == rows.sum():
            continue
        per_type.append(np.mean(1 - np.abs(silhouette_samples(X[rows], batches[rows], metric="euclidean"))))
    if not per_type:
        raise InputError("batch_silhouette: no cell type has cells in 2 or more batches; batch mixing cannot be scored")
    return float(np.mean(per_type))


def ilisi(X, batches, *, perplexity: float = LISI_PERPLEXITY) -> float:
    """scib-metrics' graph iLISI scaled to [0, 1]: (median LISI - 1) / (n_batches - 1).

    LISI of each cell from its 3 x `perplexity` nearest neighbours (exact, sklearn,
    self excluded), see `lisi_from_knn`. 1 = every neighbourhood holds all batches
    in equal shares, 0 = every neighbourhood is a single batch.
    """
    X, batches = _embedding(X), _labels(batches, "batches")
    _same_length(X, batches, "batches")
    _at_least_two(batches, "batches")
    k = int(min(3 * perplexity, len(X) - 1))
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors()
    lisi = lisi_from_knn(distances, indices, batches, perplexity=min(perplexity, k / 3))
    return float((np.nanmedian(lisi) - 1) / (len(np.unique(batches)) - 1))


def lisi_from_knn(distances, indices, labels, *, perplexity: float = LISI_PERPLEXITY, tol: float = 1e-5, max_tries: int = 50) -> np.ndarray:
    """Local inverse Simpson index of each cell (Korsunsky et al. 2019), from its kNN.

    As in harmony and scib-metrics: each cell weighs its neighbours by
    exp(-beta * distance), beta found by bisection (from 1, at most `max_tries` steps,
    until |entropy - log(perplexity)| < `tol`); the Simpson index is the sum over
    labels of the squared weight share; LISI = 1 / Simpson, between 1 and the number
    of labels. `distances`/`indices`: (cells x k) euclidean distances and row indices
    of the neighbours, self not included. Unlike scib-metrics, weights are computed
    from distances minus the row minimum (same weights and entropy, no underflow to 0
    for far-apart cells); a row whose weights still vanish gets NaN, not -1.
    """
    distances = np.asarray(distances, dtype=np.float64)
    indices = np.asarray(indices)
    codes = pd.Categorical(np.asarray(labels).astype(str)).codes
    if distances.shape != indices.shape or distances.ndim != 2:
        raise InputError(f"lisi_from_knn: distances {distances.shape} and indices {indices.shape} must be the same (cells x k) shape")
    shifted = distances - distances.min(axis=1, keepdims=True)
    log_perplexity = np.log(perplexity)

    def entropy_and_weights(beta, rows):
        weights = np.exp(-shifted[rows] * beta[:, None])
        total = weights.sum(axis=1)
        entropy = np.log(total) + beta * (shifted[rows] * weights).sum(axis=1) / total
        return entropy, weights / total[:, None]

    n = len(distances)
    beta, low, high = np.ones(n), np.full(n, -np.inf), np.full(n, np.inf)
    entropy, weights = entropy_and_weights(beta, np.arange(n))
    diff = entropy - log_perplexity
    for _ in range(max_tries):
        rows = np.flatnonzero(np.abs(diff) >= tol)
        if len(rows) == 0:
            break
        b, too_flat = beta[rows], diff[rows] > 0  # entropy too high: sharpen (raise beta)
        low[rows] = np.where(too_flat, b, low[rows])
        high[rows] = np.where(too_flat, high[rows], b)
        beta[rows] = np.where(
            too_flat,
            np.where(np.isinf(high[rows]), b * 2, (b + high[rows]) / 2),
            np.where(np.isinf(low[rows]), b / 2, (b + low[rows]) / 2),
        )
        entropy[rows], weights[rows] = entropy_and_weights(beta[rows], rows)
        diff[rows] = entropy[rows] - log_perplexity
    shares = np.zeros((n, codes.max() + 1))
    np.add.at(shares, (np.repeat(np.arange(n), indices.shape[1]), codes[indices].ravel()), weights.ravel())
    simpson = (shares**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(simpson) & (simpson > 0), 1 / simpson, np.nan)


def _embedding(X) -> np.ndarray:
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise InputError(f"embedding: expected a (cells x dims) matrix with at least 2 cells, got shape {X.shape}")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InputError(f"embedding: {bad} cells have NaN or infinite values")
    return X


def _labels(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=object).ravel()
    missing = pd.isna(values)
    if missing.any():
        raise InputError(f"{name}: {int(missing.sum())} cells have no label (NaN/None)")
    return values.astype(str)


def _same_length(X: np.ndarray, labels: np.ndarray, name: str) -> None:
    if len(labels) != len(X):
        raise InputError(f"{name}: {len(labels)} labels for {len(X)} cells in the embedding")


def _at_least_two(labels: np.ndarray, what: str) -> None:
    if len(np.unique(labels)) < 2:
        raise InputError(f"{what}: need at least 2 distinct values, got {len(np.unique(labels))}")
