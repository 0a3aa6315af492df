"""Inputs of every layout (issue 22, item 3): an .h5ad whose X is stored by gene (CSC) or dense gives
exactly the blocks of the same cells stored by cell (CSR), through DatasetBlocks, `celllm tokenize` and
`celllm embed`, each stored value read once and in bounded pieces."""

import errno
import functools
import io
import re
import shlex
import subprocess
import sys
import tempfile

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import celllm.embed
import celllm.io
from celllm.cli import main
from celllm.errors import InputError
from celllm.io import DatasetBlocks, write_h5ad
from celllm.pretrain.store import ARRAYS
from tests.fixtures.data import make_counts

N_CELLS, BLOCK = 40, 7  # 6 blocks, the last one short


def _write(adata: ad.AnnData, path, layout: str, compressed: bool = True):
    adata = adata.copy()
    adata.X = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": lambda X: X.toarray()}[layout](adata.X)
    if compressed:
        write_h5ad(adata, path)  # gzip, as the parsers write: a dense X is chunked
    else:
        adata.write_h5ad(path)  # a dense X is one contiguous dataset
    return path


@pytest.fixture
def layouts(tmp_path):
    cells = make_counts(n_cells=N_CELLS, seed=4)
    return {layout: _write(cells, tmp_path / f"{layout}.h5ad", layout) for layout in ("csr", "csc", "dense")}


def _blocks(path, cells=BLOCK):
    with DatasetBlocks(path) as dataset:
        return list(dataset.blocks(cells))


def _assert_same_blocks(got, expected):
    assert [start for start, _ in got] == [start for start, _ in expected] == list(range(0, N_CELLS, BLOCK))
    for (_, a), (_, b) in zip(got, expected):
        assert a.format == b.format == "csr" and a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "layout, settings",
    [
        ("csc", {}),  # the buckets in memory, one column block
        ("csc", {"CSC_IN_MEMORY_BYTES": 0, "CSC_READ_VALUES": 50}),  # a temporary file, many column blocks
        ("csc", {"CSC_READ_VALUES": 1}),  # a column block of one gene
        ("dense", {}),
        ("dense", {"DENSE_READ_BYTES": 1}),  # a slice of one chunk of rows
    ],
    ids=["csc-memory", "csc-file", "csc-one-gene", "dense", "dense-small-reads"],
)
def test_every_layout_gives_the_blocks_of_csr(layouts, layout, settings, monkeypatch):
    expected = _blocks(layouts["csr"])
    for name, value in settings.items():
        monkeypatch.setattr(celllm.io, name, value)
    _assert_same_blocks(_blocks(layouts[layout]), expected)


@pytest.mark.parametrize(
    "layout, settings", [("csr", {}), ("csc", {}), ("csc", {"CSC_IN_MEMORY_BYTES": 0, "CSC_READ_VALUES": 50}), ("dense", {})]
)
def test_a_range_of_cells_gives_the_blocks_of_those_cells(layouts, layout, settings, monkeypatch):
    """A shard's cells (celllm.shards): blocks from `start`, the last one cut at `stop`, in every layout."""
    whole = _blocks(layouts["csr"])  # blocks of 7 cells: 0-6, 7-13, 14-20, 21-27, 28-34, 35-39
    for name, value in settings.items():
        monkeypatch.setattr(celllm.io, name, value)
    with DatasetBlocks(layouts[layout]) as dataset:
        got = list(dataset.blocks(BLOCK, 14, 33))
        with pytest.raises(ValueError, match="cells 14:41 are not a range of the 40 cells"):
            next(dataset.blocks(BLOCK, 14, 41))
    expected = [(14, whole[2][1]), (21, whole[3][1]), (28, whole[4][1][:5])]
    assert [start for start, _ in got] == [14, 21, 28]
    for (_, a), (_, b) in zip(got, expected):
        assert a.format == "csr" and a.dtype == np.float32 and (a != b).nnz == 0 and np.array_equal(a.indices, b.indices)


def _counting_reads(monkeypatch) -> list[tuple[str, int]]:
    """(dataset name, elements) of every h5py read from now on."""
    reads, read = [], h5py.Dataset.__getitem__

    def counted(self, key, *args, **kwargs):
        out = read(self, key, *args, **kwargs)
        reads.append((self.name, np.size(out)))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted)
    return reads


def test_csc_values_are_read_once_in_bounded_pieces(layouts, monkeypatch):
    # anndata's row slices of a CSC matrix read every column for every block: 6 blocks read each stored value 6 times
    monkeypatch.setattr(celllm.io, "CSC_READ_VALUES", 60)
    monkeypatch.setattr(celllm.io, "CSC_IN_MEMORY_BYTES", 0)
    opened = []
    make_file = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **kw: opened.append(make_file(**kw)) or opened[-1])
    with h5py.File(layouts["csc"]) as handle:
        nnz = handle["X/data"].shape[0]
    reads = _counting_reads(monkeypatch)
    blocks = _blocks(layouts["csc"])
    for name in ("/X/data", "/X/indices"):
        sizes = [n for read, n in reads if read == name]
        assert sum(sizes) == nnz and 1 < len(sizes) and max(sizes) <= 60 + 30  # a column block: 60 values, or one gene more
    assert sum(X.nnz for _, X in blocks) == nnz
    assert len(opened) == 1 and opened[0].closed  # the buckets' temporary file, gone once read
    with DatasetBlocks(layouts["csc"]) as dataset:  # and when the reader stops early
        first = dataset.blocks(BLOCK)
        next(first)
        first.close()
    assert len(opened) == 2 and opened[1].closed


def test_dense_rows_are_read_once_in_bounded_slices(tmp_path, monkeypatch):
    path = _write(make_counts(n_cells=N_CELLS, seed=4), tmp_path / "dense.h5ad", "dense", compressed=False)
    monkeypatch.setattr(celllm.io, "DENSE_READ_BYTES", 3 * 30 * 4)  # 3 rows of 30 float32 genes
    reads = _counting_reads(monkeypatch)
    _assert_same_blocks(_blocks(path), _blocks(_write(make_counts(n_cells=N_CELLS, seed=4), tmp_path / "csr.h5ad", "csr")))
    sizes = [n for read, n in reads if read == "/X"]
    assert sum(sizes) == N_CELLS * 30 and max(sizes) == 3 * 30  # every value once, 3 rows at most at a time


@pytest.mark.parametrize("layout", ["csc", "dense"])
def test_the_checks_name_the_same_cells_in_every_layout(tmp_path, layout):
    cells = make_counts(n_cells=N_CELLS, seed=4)
    X = cells.X.toarray()
    X[30:34] = np.log1p(X[30:34] * np.arange(1, 5)[:, None])  # log-normalised cells in the fifth block
    cells.X = sp.csr_matrix(X)
    messages = []
    for name in ("csr", layout):
        with pytest.raises(InputError) as error:
            _blocks(_write(cells, tmp_path / f"{name}.h5ad", name))
        messages.append(str(error.value).replace(f"{name}.h5ad", "FILE"))
    assert messages[0] == messages[1] and "(cells 28-34): values look log-transformed" in messages[0]
    X[12, 3] = -1.0
    cells.X = sp.csr_matrix(X)
    with pytest.raises(InputError, match=r"\(cells 7-13\): expression contains negative values"):
        _blocks(_write(cells, tmp_path / f"negative_{layout}.h5ad", layout))


def test_no_temporary_space_is_one_line_with_a_working_conversion(layouts, tmp_path, monkeypatch):
    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(celllm.io, "CSC_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **kw: Full())
    with pytest.raises(InputError) as error:
        _blocks(layouts["csc"])
    message = str(error.value)
    assert "\n" not in message and str(layouts["csc"]) in message and re.search(r"needs [0-9.]+ MB of temporary space in ", message)
    assert "(No space left on device); set TMPDIR" in message
    command = shlex.split(message.split("once: ", 1)[1])
    assert command[0] == "python" and command[-2:] == ["IN.h5ad", "OUT.h5ad"]
    out = tmp_path / "converted.h5ad"
    subprocess.run([sys.executable, *command[1:-2], str(layouts["csc"]), str(out)], check=True)
    with h5py.File(out) as handle:
        assert handle["X"].attrs["encoding-type"] == "csr_matrix"
    monkeypatch.undo()
    _assert_same_blocks(_blocks(out), _blocks(layouts["csr"]))


def test_tokenize_stores_the_same_tokens_from_every_layout(layouts, tmp_path):
    stores = {}
    for layout, path in layouts.items():
        out = tmp_path / f"{layout}.tokens"
        assert main(["tokenize", "--data", str(path), "--out", str(out), "--block-cells", str(BLOCK), "--quiet"]) == 0
        stores[layout] = {name: (out / file).read_bytes() for name, file in ARRAYS.items()}
    assert stores["csc"] == stores["csr"] == stores["dense"]


def test_embed_gives_the_same_embeddings_from_every_layout(layouts, tmp_path, checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(celllm.embed, "embed_file", functools.partial(celllm.embed.embed_file, block_cells=BLOCK))
    embeddings = {}
    for layout, path in layouts.items():
        out = tmp_path / f"{layout}.embedded.h5ad"
        assert main(["embed", str(path), "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"]) == 0
        embeddings[layout] = ad.read_h5ad(out).obsm["X_celllm"]
    capsys.readouterr()
    assert embeddings["csr"].shape == (N_CELLS, 16)
    np.testing.assert_array_equal(embeddings["csc"], embeddings["csr"])
    np.testing.assert_array_equal(embeddings["dense"], embeddings["csr"])
