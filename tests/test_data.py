import numpy as np
import pytest

from celllm.data.pbmc import load_pbmc68k_reduced
from celllm.errors import InputError
from celllm.io import read_dataset, write_h5ad
from tests.conftest import make_counts


def test_pbmc68k_reduced_follows_the_contract():
    adata = load_pbmc68k_reduced()
    assert adata.shape == (700, 765)
    assert adata.obs["cell_type"].nunique() == 10
    assert adata.X.format == "csr" and adata.X.data.min() > 0
    # expm1 of scanpy's log1p values: size-normalised totals of a few thousand per cell
    assert 1_000 < np.median(np.asarray(adata.X.sum(axis=1))) < 5_000
    assert adata.uns["simulated"] is False and adata.uns["count_scale"] == "size_normalised"


def test_missing_label_column_is_named(tmp_path):
    write_h5ad(make_counts(label_column="cell_type"), tmp_path / "d.h5ad")
    with pytest.raises(InputError, match=r"d.h5ad: missing label column 'response'"):
        read_dataset(tmp_path / "d.h5ad", required_obs=["response"])


def test_duplicate_gene_names_are_refused(tmp_path):
    adata = make_counts(n_genes=4)
    adata.var_names = ["A", "B", "A", "C"]
    write_h5ad(adata, tmp_path / "dup.h5ad")
    with pytest.raises(InputError, match="gene names are not unique"):
        read_dataset(tmp_path / "dup.h5ad")
