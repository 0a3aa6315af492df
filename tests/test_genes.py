"""One symbol space: HGNC approved symbols from Ensembl ids, previous symbols and aliases."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from celllm.io import write_h5ad
from celllm.tokens import Vocabulary
from tests.fixtures.formats import HGNC_GENES, write_hgnc


@pytest.fixture
def symbols(tmp_path):
    return GeneSymbols.from_hgnc(write_hgnc(tmp_path / "hgnc.txt", HGNC_GENES))


def test_identifiers_map_to_approved_symbols(symbols):
    assert symbols.symbol("A1BG") == "A1BG"
    assert symbols.symbol("ENSG00000145416.7") == "MARCHF1"  # version suffix ignored
    assert symbols.symbol("SEPT7") == "SEPTIN7" and symbols.symbol("MARCH1") == "MARCHF1"
    assert symbols.symbol("CDC10") == "SEPTIN7" and symbols.symbol("ABG") == "A1BG"
    assert symbols.symbol("GAB") == "GAB" and "GAB" in symbols.ambiguous  # an alias of two genes stays as it is
    assert symbols.symbol("ENSG00000999999") is None and symbols.symbol("NOVEL1") == "NOVEL1"
    assert symbols.protein_coding == {"A1BG", "MARCHF1", "SEPTIN7"}


def test_harmonise_sums_genes_that_meet_and_drops_unknown_ensembl_ids(symbols):
    X = sp.csr_matrix(np.array([[1, 2, 3, 4], [0, 5, 0, 6]], dtype=np.float32))
    adata = ad.AnnData(X, var=pd.DataFrame(index=["SEPT7", "SEPTIN7", "ENSG00000999999", "ENSG00000121410"]))
    out = symbols.harmonise(adata, "toy")
    assert list(out.var_names) == ["A1BG", "SEPTIN7"] and sp.issparse(out.X)
    assert out.X.toarray().tolist() == [[4, 3], [6, 5]]


def test_harmonise_refuses_data_with_no_human_gene(symbols):
    adata = ad.AnnData(sp.csr_matrix(np.ones((1, 1), dtype=np.float32)), var=pd.DataFrame(index=["ENSG00000999999"]))
    with pytest.raises(InputError, match="toy: none of its 1 genes"):
        symbols.harmonise(adata, "toy")


def test_bad_hgnc_tables_are_named(tmp_path):
    (tmp_path / "bad.txt").write_text("symbol\tname\nA1BG\tx\n")
    with pytest.raises(InputError, match="bad.txt: missing HGNC column"):
        GeneSymbols.from_hgnc(tmp_path / "bad.txt")
    with pytest.raises(InputError, match="HGNC gene table not found"):
        GeneSymbols.from_hgnc(tmp_path / "none.txt")


def test_vocabulary_restricted_to_a_gene_set_is_sorted_and_order_free(tmp_path, symbols):
    for name, genes in (("a", ["SEPTIN7", "MALAT1", "A1BG"]), ("b", ["MARCHF1", "A1BG"])):
        write_h5ad(
            ad.AnnData(sp.csr_matrix(np.ones((2, len(genes)), dtype=np.float32)), var=pd.DataFrame(index=genes)), tmp_path / f"{name}.h5ad"
        )
    one = Vocabulary.from_datasets([tmp_path / "a.h5ad", tmp_path / "b.h5ad"], keep=symbols.protein_coding)
    two = Vocabulary.from_datasets([tmp_path / "b.h5ad", tmp_path / "a.h5ad"], keep=symbols.protein_coding)
    assert one.genes == two.genes == ["A1BG", "MARCHF1", "SEPTIN7"]
