import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from celllm.cli import main
from celllm.io import write_h5ad
from tests.fixtures.data import make_counts


def _embed(tmp_path, capsys, adata_or_path, checkpoint):
    if isinstance(adata_or_path, ad.AnnData):
        path = tmp_path / "in.h5ad"
        write_h5ad(adata_or_path, path)
    else:
        path = adata_or_path
    out = tmp_path / "out.h5ad"
    code = main(["embed", str(path), "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"])
    return code, out, capsys.readouterr()


def test_embed_writes_obsm_and_reports_dropped_genes(tmp_path, capsys, checkpoint, caplog):
    cells = make_counts(n_cells=10, n_genes=30, seed=3)
    extra = ad.AnnData(sp.csr_matrix(np.ones((10, 2), dtype=np.float32)), obs=cells.obs, var=dict(index=["NOT_A_GENE", "ALSO_NOT"]))
    cells = ad.concat([cells, extra], axis=1, merge="same")
    code, out, printed = _embed(tmp_path, capsys, cells, checkpoint)
    assert code == 0
    result = ad.read_h5ad(out)
    assert result.obsm["X_celllm"].shape == (10, 16)
    assert np.isfinite(result.obsm["X_celllm"]).all()
    assert "2 genes outside the vocabulary dropped" in printed.out
    # the same cells embedded in another order give the same rows
    again = tmp_path / "again"
    again.mkdir()
    code, out2, _ = _embed(again, capsys, cells[::-1].copy(), checkpoint)
    assert code == 0
    np.testing.assert_allclose(ad.read_h5ad(out2).obsm["X_celllm"][::-1], result.obsm["X_celllm"], rtol=1e-5, atol=1e-6)


def _with_values(values):
    cells = make_counts(n_cells=4, n_genes=30)
    X = cells.X.toarray()
    X[0, 0] = values
    cells.X = sp.csr_matrix(X)
    return cells


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda tmp: tmp / "missing.h5ad", "file not found"),
        (lambda tmp: (tmp / "cells.csv").write_text("a,b\n1,2\n") and tmp / "cells.csv", "expected an .h5ad file"),
        (lambda tmp: (tmp / "broken.h5ad").write_text("not hdf5") and tmp / "broken.h5ad", "not a readable AnnData"),
        (lambda tmp: ad.AnnData(sp.csr_matrix(np.full((3, 2), 2.0, dtype=np.float32)), var=dict(index=["X1", "X2"])), "none of its 2 genes"),
        (lambda tmp: _with_values(np.nan), "NaN"),
        (lambda tmp: _with_values(-1.0), "negative values"),
        (lambda tmp: make_counts(n_cells=4)[:0].copy(), "no cells"),
    ],
    ids=["missing", "not-h5ad", "corrupt", "no-vocab-gene", "nan", "negative", "no-cells"],
)
def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(tmp_path, capsys, checkpoint, make_input, message):
    code, out, printed = _embed(tmp_path, capsys, make_input(tmp_path), checkpoint)
    assert code == 2
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("celllm: error: ") and message in lines[0]
    assert not out.exists()
    assert not any(p.name.startswith(".out.h5ad") for p in tmp_path.iterdir())


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    write_h5ad(make_counts(n_cells=4), tmp_path / "in.h5ad")
    code, out, printed = _embed(tmp_path, capsys, tmp_path / "in.h5ad", tmp_path / "no_checkpoint")
    assert code == 2 and "checkpoint folder not found" in printed.err and not out.exists()
