"""Embedding metrics: each against an answer that follows from the data's construction."""

import numpy as np
import pytest

from benchmarks.embedding_metrics import (
    KEYS,
    STOCHASTIC,
    batch_silhouette,
    embedding_metrics,
    ilisi,
    knn_transfer,
    label_silhouette,
    leiden_agreement,
    lisi_from_knn,
)
from celllm.errors import InputError

needs_igraph = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("igraph") is None, reason="Leiden metrics need the igraph package (pip install igraph)"
)


def blobs(n_types=3, per_type=100, dims=8, spacing=50.0, seed=0):
    """Unit Gaussian clusters whose centres are `spacing` apart along their own axis."""
    rng = np.random.default_rng(seed)
    types = np.repeat([f"t{i}" for i in range(n_types)], per_type)
    centres = np.zeros((n_types, dims))
    centres[np.arange(n_types), np.arange(n_types)] = spacing
    return centres[np.repeat(np.arange(n_types), per_type)] + rng.normal(size=(n_types * per_type, dims)), types


@needs_igraph
def test_separated_clusters_score_one():
    X, types = blobs()
    assert leiden_agreement(X, types)["ari"] == 1.0 and leiden_agreement(X, types)["nmi"] == 1.0
    assert knn_transfer(X, types) == {"knn_accuracy": 1.0, "knn_macro_f1": 1.0}
    # within-type distance ~ sqrt(2 * 8) = 4, between types ~ 50 * sqrt(2) = 71: silhouette ~ 0.94, scaled ~ 0.97
    assert label_silhouette(X, types) > 0.9


@needs_igraph
def test_labels_random_to_one_blob_score_chance():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 8))
    types = rng.choice(["a", "b", "c"], size=600)
    assert abs(leiden_agreement(X, types)["ari"]) < 0.05
    assert abs(knn_transfer(X, types)["knn_accuracy"] - 1 / 3) < 0.08
    assert abs(label_silhouette(X, types) - 0.5) < 0.05  # silhouette ~ 0


def test_mixed_batches_score_near_one():
    X, types = blobs()
    batches = np.random.default_rng(2).choice(["b0", "b1"], size=len(X))
    # random batch labels inside a cluster: a ~ b, silhouette ~ 0 +- a few %, so 1 - |s| ~ 0.97
    assert batch_silhouette(X, types, batches) > 0.9
    # ~30 effective neighbours drawn at random from 2 batches: Simpson ~ 0.5 + 2 * 0.09^2, LISI ~ 1.94
    assert ilisi(X, batches) > 0.8


def test_separated_batches_score_near_zero():
    X, types = blobs(per_type=100)
    X = np.vstack([X, X + 50.0])  # batch b1: the same cells shifted by 50 on every axis
    types, batches = np.concatenate([types, types]), np.repeat(["b0", "b1"], len(types))
    # within a cell type: a ~ 4 (same batch), b ~ 50 * sqrt(8) = 141 (other batch), so
    # silhouette ~ 1 - a / b ~ 0.97 and 1 - |s| ~ 0.03; 0.1 leaves room for the noise.
    assert batch_silhouette(X, types, batches) < 0.1
    # each cell's 90 neighbours lie among the 99 other cells of its own (type, batch): LISI = 1 exactly
    assert ilisi(X, batches) == pytest.approx(0.0, abs=1e-9)


def test_lisi_by_hand():
    labels = np.array(["a", "b", "a", "b", "a", "c"])
    equal = np.ones((3, 4))  # equal distances: equal weights whatever the bandwidth
    indices = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 3, 5]])
    # cell 0 sees b, a, b, a: shares 1/2, 1/2 -> Simpson 1/2, LISI 2
    # cell 1 sees a, a, b, a: shares 3/4, 1/4 -> Simpson 10/16, LISI 1.6
    # cell 2 sees a, b, b, c: shares 1/4, 1/2, 1/4 -> Simpson 6/16, LISI 8/3
    assert lisi_from_knn(equal, indices, labels, perplexity=4) == pytest.approx([2.0, 1.6, 8 / 3])


def test_lisi_bandwidth_search_by_hand():
    # neighbours at 0 (batch a) and ln(3)/4 (batch b): at beta = 4 the weights are 3/4, 1/4, whose
    # perplexity is exp(H(3/4, 1/4)). The search starts at beta = 1 (too flat) and doubles twice
    # to land on 4 exactly, so LISI = 1 / (9/16 + 1/16) = 1.6.
    perplexity = np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    lisi = lisi_from_knn([[0.0, np.log(3) / 4]], [[1, 2]], ["a", "a", "b"], perplexity=perplexity)
    assert lisi == pytest.approx([1.6])


def test_ilisi_by_hand():
    # one-hot rows: 8 equidistant cells, 4 per batch; perplexity 7/3 -> k = 7, every other cell,
    # equal weights 1/7: shares 3/7 (own batch) and 4/7 -> LISI 49/25 for every cell, iLISI 24/25
    X, batches = np.eye(8), np.repeat(["a", "b"], 4)
    assert ilisi(X, batches, perplexity=7 / 3) == pytest.approx(24 / 25)
    # two batches in exactly equal shares (hand kNN): LISI 2, which ilisi's scaling maps to 1
    lisi = lisi_from_knn(np.ones((4, 2)), [[1, 2], [0, 3], [0, 3], [1, 2]], ["a", "b", "a", "b"], perplexity=2)
    assert lisi == pytest.approx(np.full(4, 2.0)) and (np.median(lisi) - 1) / (2 - 1) == pytest.approx(1.0)


@needs_igraph
def test_overall_is_scibs_weighting():
    X, types = blobs(per_type=60)
    batches = np.random.default_rng(3).choice(["b0", "b1"], size=len(X))
    with_batches = embedding_metrics(X, types, batches)
    assert list(with_batches) == list(KEYS)
    assert with_batches["bio"] == pytest.approx(np.mean([with_batches[k] for k in ("ari", "nmi", "asw_label")]))
    assert with_batches["batch"] == pytest.approx((with_batches["asw_batch"] + with_batches["ilisi"]) / 2)
    assert with_batches["overall"] == pytest.approx(0.6 * with_batches["bio"] + 0.4 * with_batches["batch"])
    bio_only = embedding_metrics(X, types)
    assert set(bio_only) == {"ari", "nmi", "asw_label", "knn_accuracy", "knn_macro_f1", "bio", "overall"}
    assert bio_only["overall"] == bio_only["bio"] == with_batches["bio"]
    assert embedding_metrics(X, types, np.full(len(X), "only")) == bio_only  # one batch: nothing to mix


@needs_igraph
def test_same_seed_same_numbers():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 8))
    X[:150] += 1.5
    types = np.where(rng.random(300) < 0.7, np.repeat(["x", "y"], 150), "z")
    batches = rng.choice(["b0", "b1", "b2"], size=300)
    assert embedding_metrics(X, types, batches, seed=7) == embedding_metrics(X, types, batches, seed=7)


def test_small_classes_shrink_the_folds_and_singletons_are_named():
    X, types = blobs(per_type=20)
    types[:18] = "t1"  # t0 keeps 2 cells: 2 folds
    assert knn_transfer(X, types)["knn_accuracy"] > 0.9
    types[18] = "t1"  # t0 keeps 1 cell
    with pytest.raises(InputError, match="'t0' has a single cell"):
        knn_transfer(X, types)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((10, 2)), ["a", "b"] * 4), "8 labels for 10 cells"),
        ((np.zeros((10, 2)), ["a"] * 10), "at least 2 distinct"),
        ((np.array([[np.nan, 0.0]] + [[1.0, 1.0]] * 9), ["a", "b"] * 5), "1 cells have NaN"),
        ((np.zeros(10), ["a", "b"] * 5), "cells x dims"),
        ((np.zeros((10, 2)), ["a", None] * 5), "5 cells have no label"),
        ((np.zeros((10, 2)), ["a", "b"] * 5, ["x"] * 9), "batches: 9 labels for 10 cells"),
    ],
)
def test_bad_inputs_are_named(args, message):
    with pytest.raises(InputError, match=message):
        embedding_metrics(*args)


def test_batch_metrics_need_shared_cell_types_and_two_batches():
    X, types = blobs(n_types=2, per_type=10)
    with pytest.raises(InputError, match="no cell type has cells in 2 or more batches"):
        batch_silhouette(X, types, types)  # batch = cell type: nothing to mix
    with pytest.raises(InputError, match="batches: need at least 2"):
        ilisi(X, np.full(len(X), "b"))


def test_every_key_is_described_and_only_the_stochastic_ones_follow_the_seed():
    from benchmarks.metrics import METRICS

    assert set(KEYS) <= set(METRICS)
    X, types = blobs(n_types=3, per_type=30)
    X = X + np.random.default_rng(1).normal(0, 2.0, X.shape)  # overlapping blobs: Leiden and folds can differ
    batches = np.tile(["a", "b", "c"], len(X) // 3)
    first, second = (embedding_metrics(X, types, batches, seed=seed) for seed in (0, 1))
    assert all(first[k] == second[k] for k in KEYS if k not in STOCHASTIC and k in first)
