import numpy as np
import pytest
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.preprocess import bin_floor_clip, bin_quantile, normalize_log2
from celllm.tokens import TokenConfig, Vocabulary, pad_batch, tokenize


def test_normalize_log2_is_scbert_recipe():
    X = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    out = normalize_log2(X).toarray()
    np.testing.assert_allclose(out[0], np.log2(1 + np.array([2500.0, 7500.0, 0.0])), rtol=1e-6)
    assert (out[1] == 0).all()  # an empty cell stays empty


def test_floor_clip_matches_released_binning():
    values = np.array([0.2, 0.99, 1.0, 2.5, 4.99, 5.0, 13.0])
    assert bin_floor_clip(values, 6).tolist() == [0, 0, 1, 2, 4, 5, 5]


def test_quantile_bins_are_per_cell_ranks():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 10.0])
    indptr = np.array([0, 4, 6])
    assert bin_quantile(values, indptr, 4).tolist() == [0, 1, 2, 3, 0, 0]


def test_tokenize_keeps_nonzero_vocabulary_genes_in_vocab_order():
    X = sp.csr_matrix(np.array([[5.0, 0.0, 1.0, 4.0], [0.0, 2.0, 0.0, 0.0]], dtype=np.float32))
    vocab = Vocabulary(["C", "A", "B"])  # D is unknown
    cells = tokenize(X, ["A", "B", "C", "D"], vocab, TokenConfig())
    assert cells.n_dropped_genes == 1
    genes, bins = cells.cell(0)
    assert genes.tolist() == [0, 1]  # C (id 0), A (id 1); B is zero, D dropped
    # normalisation uses the cell's total over all of its genes (10), before dropping D
    expected = np.clip(np.floor(np.log2(1 + np.array([1.0, 5.0]) / 10 * 1e4)), 0, 5)
    assert bins.tolist() == expected.astype(int).tolist()
    assert cells.cell(1)[0].tolist() == [2]


def test_tokenize_cuts_long_cells_in_gene_order_when_asked():
    X = sp.csr_matrix(np.ones((2, 10), dtype=np.float32))
    cfg = TokenConfig(max_len=4, truncation="vocabulary_order")  # the released code's cut
    cells = tokenize(X, [f"G{i}" for i in range(10)], Vocabulary([f"G{i}" for i in range(10)]), cfg)
    assert cells.lengths().tolist() == [3, 3] and cells.n_truncated_cells == 2
    assert cells.cell(1)[0].tolist() == [0, 1, 2]


def test_bulk_profiles_keep_their_most_expressed_genes():
    """A bulk profile has every gene non-zero: cut in vocabulary order it would keep only the
    alphabetically first genes; by default it keeps the most expressed (ties in vocabulary order)."""
    genes = ["ABCA1", "ACTB", "BRCA1", "EGFR", "GAPDH", "MKI67", "TP53", "ZNF1"]
    bulk = np.array(
        [
            [3.0, 900.0, 5.0, 40.0, 800.0, 40.0, 2.0, 1.0],  # every gene expressed, as in GDSC/CCLE
            [0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 2.0],
        ],
        dtype=np.float32,
    )  # a short cell: untouched
    vocab = Vocabulary(genes)
    cells = tokenize(sp.csr_matrix(bulk), genes, vocab, TokenConfig(max_len=5))  # 4 genes + [CLS]
    assert [vocab.genes[i] for i in cells.cell(0)[0]] == ["ACTB", "EGFR", "GAPDH", "MKI67"]  # EGFR/MKI67 tie: both kept
    assert [vocab.genes[i] for i in cells.cell(1)[0]] == ["GAPDH", "ZNF1"] and cells.n_truncated_cells == 1
    three = tokenize(sp.csr_matrix(bulk), genes, vocab, TokenConfig(max_len=4))
    assert [vocab.genes[i] for i in three.cell(0)[0]] == ["ACTB", "EGFR", "GAPDH"]  # of the tie, the first in vocabulary order
    released = tokenize(sp.csr_matrix(bulk), genes, vocab, TokenConfig(max_len=5, truncation="vocabulary_order"))
    assert [vocab.genes[i] for i in released.cell(0)[0]] == ["ABCA1", "ACTB", "BRCA1", "EGFR"]
    with pytest.raises(ValueError, match="tokens option 'truncation' must be one of top_expressed, vocabulary_order, not 'first'"):
        TokenConfig(truncation="first")


def test_tokenize_without_known_genes_fails_clearly():
    X = sp.csr_matrix(np.ones((1, 2), dtype=np.float32))
    with pytest.raises(InputError, match="none of its 2 genes"):
        tokenize(X, ["X1", "X2"], Vocabulary(["A"]), TokenConfig(), "cells.h5ad")


def test_pad_batch_puts_cls_first_and_pads_dynamically():
    cfg = TokenConfig()
    batch = pad_batch([(np.array([3, 4]), np.array([1, 2])), (np.array([0]), np.array([5]))], vocab_size=10, cfg=cfg)
    assert batch["gene_ids"].shape == (2, 3)  # longest cell + [CLS]
    assert batch["gene_ids"][:, 0].tolist() == [10, 10] and batch["bins"][:, 0].tolist() == [cfg.cls_bin] * 2
    assert batch["mask"].tolist() == [[True, True, True], [True, True, False]]
    assert batch["bins"][1, 2].item() == cfg.pad_bin == 7 and cfg.cls_bin == 6


def test_special_gene_ids_and_paper_constants_have_one_owner():
    """[CLS] and PAD gene ids come from celllm.tokens, in the released layout (genes, then [CLS], then PAD);
    the paper's gene count and the released length from celllm.released."""
    import benchmarks.perf.corpus
    import benchmarks.perf.gpu
    import benchmarks.perf.tokens
    from celllm import released
    from celllm.model import CellLMEncoder, EncoderConfig
    from celllm.tokens import cls_gene_id, gene_table_rows, pad_batch, pad_gene_id

    assert (cls_gene_id(3), pad_gene_id(3), gene_table_rows(3)) == (3, 4, 5)
    batch = pad_batch([(np.array([0, 2]), np.array([1, 1])), (np.array([1]), np.array([3]))], 3, TokenConfig())
    assert batch["gene_ids"].tolist() == [[3, 0, 2], [3, 1, 4]]
    encoder = CellLMEncoder(3, TokenConfig().n_bin_tokens, EncoderConfig(dim=8, depth=1, heads=2, dim_head=4, nb_features=4))
    assert encoder.gene_embedding.num_embeddings == gene_table_rows(3)
    assert (released.PAPER_N_GENES, released.RELEASED_MAX_LEN) == (19_379, 6000)
    for module in (benchmarks.perf.corpus, benchmarks.perf.gpu, benchmarks.perf.tokens):
        assert module.PAPER_N_GENES is released.PAPER_N_GENES
    assert benchmarks.perf.tokens.RELEASED_MAX_LEN is released.RELEASED_MAX_LEN
