"""The geometry of an embedding on cases whose answers are known by construction
(references written here, from the definitions: an isotropic Gaussian, a rank-one
embedding, an embedding that is a copy of one label, depth planted in one direction)."""

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.embedding_geometry import depth_correlation, depth_of, effective_rank, encoded_labels, geometry
from celllm.errors import InputError


def test_an_isotropic_gaussian_uses_every_direction():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 32))
    labels = rng.integers(0, 4, len(X))
    g = geometry(X, labels, seed=1)
    assert abs(g["mean_cosine"]) < 0.01
    assert 29 < g["participation_ratio"] <= 32  # d for a perfect sphere; sampling noise lowers it a little
    assert g["components_90"] in range(27, 31)  # 90% of 32 equal variances: 29 components
    # two random unit vectors in 32 dims: ||u - v||^2 is 2 - 2 cos, cos ~ N(0, 1/32); E exp(-4 + 4 cos) ~ exp(-4 + 8/32)
    assert g["uniformity"] == pytest.approx(-4 + 8 / 32, abs=0.05)
    # labels carry no information: same-label pairs are as far apart as any pair
    assert g["alignment"] == pytest.approx(2.0, abs=0.05)


def test_a_rank_one_embedding_has_one_direction():
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(16)
    X = rng.uniform(0.5, 2.0, (500, 1)) * direction  # every cell on one ray
    g = geometry(X, rng.integers(0, 3, len(X)))
    assert g["mean_cosine"] == pytest.approx(1.0)
    assert g["participation_ratio"] == pytest.approx(1.0)
    assert g["components_90"] == 1
    assert g["uniformity"] == pytest.approx(0.0, abs=1e-9) and g["alignment"] == pytest.approx(0.0, abs=1e-9)


def test_an_embedding_that_copies_one_label_encodes_that_label_only():
    rng = np.random.default_rng(0)
    cell_type = rng.integers(0, 5, 600)
    donor = rng.integers(0, 3, 600)  # independent of the embedding
    X = np.eye(5)[cell_type] + 0.01 * rng.standard_normal((600, 5))
    scores = encoded_labels(X, {"cell_type": cell_type, "donor": donor, "tissue": np.zeros(600)}, seed=0)
    assert scores["knn_f1_cell_type"] == pytest.approx(1.0)
    assert scores["knn_f1_donor"] < 0.45  # chance is 1/3
    assert "knn_f1_tissue" not in scores  # one value: nothing to predict
    g = geometry(X, cell_type)
    assert g["alignment"] < 0.01  # cells of one type coincide
    assert g["participation_ratio"] == pytest.approx(4.0, rel=0.1)  # five centred one-hot corners span 4 directions


def test_depth_in_one_component_is_found_and_a_depth_free_embedding_is_not():
    rng = np.random.default_rng(0)
    n = 800
    genes_detected = rng.integers(50, 2000, n)
    # a count matrix with the planted number of genes per cell, each counted twice
    rows = np.repeat(np.arange(n), genes_detected)
    cols = np.concatenate([rng.choice(3000, k, replace=False) for k in genes_detected])
    counts = sp.csr_matrix((np.full(len(rows), 2.0), (rows, cols)), shape=(n, 3000))
    noise = rng.standard_normal((n, 8))
    with_depth = noise.copy()
    with_depth[:, 0] = 10 * np.log1p(genes_detected) + 0.1 * noise[:, 0]  # the leading component is depth
    found = depth_correlation(with_depth, *depth_of(counts))
    assert found["depth_r_genes"] > 0.99 and found["depth_r_counts"] > 0.99  # counts = 2 x genes here
    assert depth_correlation(noise, *depth_of(counts))["depth_r_genes"] < 0.15


def test_effective_rank_of_a_known_spectrum():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 4)) * np.sqrt([4.0, 1.0, 1.0, 0.0])  # variances 4, 1, 1, 0
    rank = effective_rank(X)
    assert rank["participation_ratio"] == pytest.approx(36 / 18, rel=0.03)  # (4+1+1)^2 / (16+1+1)
    assert rank["components_90"] == 3  # 4/6 = 0.67, 5/6 = 0.83, then 1


def test_the_pairs_repeat_with_the_seed_and_zero_rows_are_refused():
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((300, 8)), rng.integers(0, 3, 300)
    assert geometry(X, labels, seed=3) == geometry(X, labels, seed=3)
    X[5] = 0
    with pytest.raises(InputError, match="1 all-zero row"):
        geometry(X, labels)
