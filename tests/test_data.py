import numpy as np
import pytest

from celllm.errors import InputError
from celllm.io import read_dataset, write_h5ad
from ingest.pbmc import load_pbmc68k_reduced
from tests.fixtures.data import make_counts


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


def test_vocabulary_from_datasets_keeps_first_appearance_and_names_missing_files(tmp_path):
    from celllm.tokens import Vocabulary

    a, b = make_counts(n_genes=3), make_counts(n_genes=5)
    b.var_names = ["G4", "G0", "X", "G1", "Y"]
    write_h5ad(a, tmp_path / "a.h5ad")
    write_h5ad(b, tmp_path / "b.h5ad")
    assert Vocabulary.from_datasets([tmp_path / "a.h5ad", tmp_path / "b.h5ad"]).genes == ["G0", "G1", "G2", "G4", "X", "Y"]
    with pytest.raises(InputError, match="nope.h5ad: file not found"):
        Vocabulary.from_datasets([tmp_path / "nope.h5ad"])


def test_interaction_table_errors_name_the_file(tmp_path):
    from celllm.ppi.pipeline import read_edges

    with pytest.raises(InputError, match="edges.tsv: interaction table not found"):
        read_edges(tmp_path / "edges.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(InputError, match="empty.tsv: not a tab-separated table"):
        read_edges(tmp_path / "empty.tsv")


def test_negative_token_budget_is_refused():
    from celllm.config import CellLMConfig

    with pytest.raises(InputError, match="c.yaml: pretrain option 'sub_batch_tokens' must be >= 0, not -1"):
        CellLMConfig.from_dict({"pretrain": {"sub_batch_tokens": -1}}, "c.yaml")


def test_atomic_folder_replacement_leaves_no_temporary_files(tmp_path):
    from celllm.outputs import atomic_path

    for content in ("old", "new"):
        with atomic_path(tmp_path / "ckpt") as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(content)
    assert (tmp_path / "ckpt" / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "ckpt") as tmp:
            tmp.mkdir()
            raise RuntimeError("killed while writing")
    assert (tmp_path / "ckpt" / "weights").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["ckpt"]
