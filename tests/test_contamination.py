"""Exact duplicates between the pretraining corpus (its token store) and an evaluation dataset.

The reference is built here by hand: an evaluation file that holds a copy of one corpus
cell (its genes in another order, plus a gene the corpus never saw), a near copy (one
count changed) and a cell with no vocabulary gene; only the copy may be found."""

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks.contamination import duplicates_of, write_contamination
from celllm.io import write_h5ad
from celllm.pretrain.store import TokenStore, build_token_store, cell_fingerprints
from celllm.tokens import TokenConfig, Vocabulary
from tests.fixtures.data import make_counts


def test_the_fingerprint_ignores_gene_order_and_genes_outside_the_vocabulary():
    vocab = Vocabulary(["A", "B", "C"])
    X = sp.csr_matrix(np.array([[1, 0, 5], [1, 0, 5], [0, 0, 0]], dtype=np.float32))
    same = cell_fingerprints(X, ["A", "B", "C"], vocab)
    shuffled = cell_fingerprints(sp.csr_matrix(np.array([[5, 7, 1]], dtype=np.float32)), ["C", "Z", "A"], vocab)  # Z: not in the vocabulary
    assert same[0] == same[1] == shuffled[0] != 0
    assert same[2] == 0  # no vocabulary gene: never matched
    assert cell_fingerprints(sp.csr_matrix(np.array([[1, 0, 6]], dtype=np.float32)), ["A", "B", "C"], vocab)[0] != same[0]


def test_a_planted_duplicate_is_found_and_nothing_else(tmp_path):
    corpus = make_counts(n_cells=50, n_genes=30, seed=1)
    write_h5ad(corpus, tmp_path / "corpus.h5ad")
    vocab = Vocabulary.from_datasets([tmp_path / "corpus.h5ad"])
    store = build_token_store([tmp_path / "corpus.h5ad"], tmp_path / "corpus.tokens", vocab, TokenConfig(), progress=False)

    evaluation = make_counts(n_cells=20, n_genes=30, seed=2)  # independent cells
    X = evaluation.X.toarray()
    X[3] = corpus.X[7].toarray()  # the planted copy
    X[4] = corpus.X[8].toarray()
    X[4, np.flatnonzero(X[4])[0]] += 1  # a near copy: one count differs
    order = np.random.default_rng(0).permutation(30)  # the evaluation file lists the genes in another order
    genes = np.array([f"G{i}" for i in range(30)])[order]
    X = np.hstack([X[:, order], np.ones((20, 1), dtype=np.float32)])  # and has a gene the corpus lacks
    planted = ad.AnnData(sp.csr_matrix(X), obs=evaluation.obs, var=pd.DataFrame(index=[*genes, "EXTRA"]))
    write_h5ad(planted, tmp_path / "evaluation.h5ad")

    found = duplicates_of(tmp_path / "evaluation.h5ad", TokenStore.open(store))
    assert (found["n_cells"], found["n_in_corpus"], found["first_duplicates"]) == (20, 1, "cell3")
    table = write_contamination(store, [tmp_path / "evaluation.h5ad", tmp_path / "corpus.h5ad"], tmp_path / "c.csv", tmp_path / "c.md")
    assert table["n_in_corpus"].tolist() == [1, 50]  # the corpus against itself: every cell
    assert pd.read_csv(tmp_path / "c.csv")["n_in_corpus"].tolist() == [1, 50]
    assert "| evaluation | 20 | 1 | 5.00% | cell3 |" in (tmp_path / "c.md").read_text()
