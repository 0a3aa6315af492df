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
        (
            lambda tmp: ad.AnnData(sp.csr_matrix(np.full((3, 2), 2.0, dtype=np.float32)), var=dict(index=["X1", "X2"])),
            "none of its 2 genes",
        ),
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


def test_threads_are_the_option_else_the_launchers_else_the_cores_given(tmp_path, checkpoint, monkeypatch):
    import torch

    from celllm.cli import available_cores

    write_h5ad(make_counts(n_cells=5, seed=3), tmp_path / "cells.h5ad")
    before = torch.get_num_threads()
    try:
        argv = ["embed", str(tmp_path / "cells.h5ad"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "e.h5ad"), "--quiet"]
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert main(argv + ["--threads", "1"]) == 0 and torch.get_num_threads() == 1
        assert main(argv) == 0 and torch.get_num_threads() == available_cores() == len(__import__("os").sched_getaffinity(0))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as torchrun sets it for several ranks per node
        assert main(argv) == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_batches_cover_every_cell_once_in_few_recurring_shapes():
    """The allocator reuses freed tensors only of shapes it has seen: by length, batches come in a bounded set of
    shapes (the reference: every distinct length its own shape, as before), each within the token budget."""
    from celllm.embed import BATCH_TOKENS, batches
    from celllm.tokens import padded_length

    rng = np.random.default_rng(0)
    lengths = np.clip(np.round(np.exp(rng.normal(np.log(1500), 0.5, 20_000))), 1, 5999).astype(int)  # paper-shaped cells
    seen, shapes = np.zeros(len(lengths), int), set()
    for rows, padded, capacity in batches(lengths, 64, ordered=False):
        seen[rows] += 1
        assert len(rows) <= capacity <= 64 and (lengths[rows] + 1 <= padded).all() and padded == padded_length(padded)
        assert capacity * padded <= BATCH_TOKENS or capacity == 1
        shapes.add((capacity, padded))
    assert (seen == 1).all()
    assert len(shapes) <= 80 < len(set(lengths)) / 20  # ~70 shapes where there are >2,000 distinct lengths
    assert [padded_length(n) for n in (1, 9, 100, 1500, 6000)] == [8, 16, 104, 1536, 6144]  # within 1/16 of a doubling
    ordered = list(batches(lengths[:70], 32, ordered=True))  # the released encoder: data order, fixed batches
    assert [r.tolist() for r, _, _ in ordered] == [list(range(0, 32)), list(range(32, 64)), list(range(64, 70))]


def test_inference_builds_the_encoder_alone(checkpoint, tmp_path):
    """`celllm embed` and the benchmark models load the encoder without the pretraining heads (nor their
    module): the same weights as the whole model's encoder, from the same file, and no random draws."""
    import subprocess
    import sys

    import torch

    from celllm.checkpoint import load_checkpoint, load_encoder
    from celllm.embed import CellEmbedder
    from celllm.model import CellLMEncoder

    before = torch.get_rng_state()
    encoder, vocab, cfg = load_encoder(checkpoint)
    assert torch.equal(torch.get_rng_state(), before)
    assert type(encoder) is CellLMEncoder and not encoder.training and len(vocab) == 30
    whole = load_checkpoint(checkpoint)[0]
    assert whole.encoder.state_dict().keys() == encoder.state_dict().keys()
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in whole.encoder.state_dict().items())
    assert type(CellEmbedder(checkpoint, device="cpu").encoder) is CellLMEncoder
    loaded = "import sys, celllm.embed, celllm.checkpoint; print('celllm.pretrain.model' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", loaded], capture_output=True, text=True, check=True).stdout.strip() == "False"
