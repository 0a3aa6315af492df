"""A file embedded in shards (one job per range of cells) and gathered is the file one job writes, byte for byte."""

import h5py
import numpy as np
import pytest

from celllm.embed import CellEmbedder, embed_file, embed_shard, gather_shards
from celllm.errors import InputError
from celllm.io import DatasetBlocks, write_h5ad
from celllm.outputs import file_sha256
from celllm.shards import plan_shards, read_plan, write_plan
from tests.fixtures.data import make_counts


def _shard_and_gather(tmp_path, data, checkpoint, shard_cells, block_cells, **options):
    """(the single job's output, the gathered one, the shard files) of `data` embedded both ways."""
    single, gathered = tmp_path / "single.h5ad", tmp_path / "gathered.h5ad"
    embed_file(data, checkpoint, single, block_cells=block_cells, progress=False, **options)
    shards = write_plan(data, tmp_path / "plan.json", shard_cells, block_cells)
    assert shards == read_plan(tmp_path / "plan.json")
    files = [tmp_path / f"shard{i}.h5" for i in range(len(shards))]
    for (start, stop), path in zip(shards, files):
        embed_shard(data, checkpoint, path, start, stop, block_cells=block_cells, progress=False, **options)
    gather_shards(data, checkpoint, files[::-1], gathered, block_cells=block_cells)  # any order
    return single, gathered, files


def _elements(path) -> dict:
    """Every group, dataset and attribute of an HDF5 file, by name: (kind, value)."""
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()] if isinstance(item, h5py.Dataset) else None))
        handle.visititems(lambda name, item: found.update({f"{name}@{k}": v for k, v in item.attrs.items()}))
    return found


def _assert_same_elements(a, b):
    left, right = _elements(a), _elements(b)
    assert left.keys() == right.keys()
    for name in left:
        x, y = np.asarray(left[name]), np.asarray(right[name])
        same = x.tolist() == y.tolist() if x.dtype == object else x.tobytes() == y.tobytes()  # strings; numbers bit for bit
        assert x.dtype == y.dtype and x.shape == y.shape and same, name


def test_shards_gathered_are_the_single_jobs_file_byte_for_byte(tmp_path, checkpoint):
    """50 cells in blocks of 4 and shards of 12 (5 shards, the last of 2 cells): every shard after the first begins
    inside the file, every one but the last ends inside it."""
    data = tmp_path / "cells.h5ad"
    write_h5ad(make_counts(n_cells=50, seed=7), data)
    single, gathered, files = _shard_and_gather(tmp_path, data, checkpoint, shard_cells=12, block_cells=4)
    assert len(files) == 5
    _assert_same_elements(single, gathered)  # every dataset and attribute, bit for bit
    assert file_sha256(single) == file_sha256(gathered)  # and the bytes (h5py writes no times; the writer whole chunks)
    with h5py.File(files[2]) as shard, h5py.File(single) as whole:
        assert shard["embeddings"].shape == (12, 16) and (shard.attrs["start"], shard.attrs["stop"]) == (24, 36)
        assert np.array_equal(shard["embeddings"][()], whole["obsm/X_celllm"][24:36])


def test_the_released_encoder_sharded_keeps_its_batches(tmp_path):
    """The released encoder's cells depend on their batch mates: blocks (and so shards) are whole batches."""
    from celllm.released import import_released
    from tests.fixtures.released import write_released_checkpoint

    tiny = {"dim": 16, "depth": 1, "heads": 2, "dim_head": 8, "nb_features": 8, "ff_mult": 2}
    write_released_checkpoint(tmp_path / "released.pth", 30, seed=3, **tiny)
    (tmp_path / "genes.txt").write_text("".join(f"G{i}\n" for i in range(30)))
    import_released(tmp_path / "released.pth", tmp_path / "genes.txt", tmp_path / "imported", max_len=40)
    data = tmp_path / "cells.h5ad"
    write_h5ad(make_counts(n_cells=30, seed=8), data)
    # blocks of 6 cells are rounded down to whole batches of 4: 4 cells, so shards of 12 are 3 blocks
    single, gathered, files = _shard_and_gather(tmp_path, data, tmp_path / "imported", shard_cells=12, block_cells=6, batch_size=4)
    assert len(files) == 3 and file_sha256(single) == file_sha256(gathered)
    # the same cells in batches off the blocks (from cell 6 on: 6-9, 10-13, ...) are embedded differently
    embedder = CellEmbedder(tmp_path / "imported", device="cpu", batch_size=4)
    with DatasetBlocks(data) as dataset:
        off = np.concatenate([part.embeddings for _, part in embedder.embed_blocks(dataset, 6, 30, block_cells=6)])
    with h5py.File(single) as whole:
        assert not np.array_equal(off, whole["obsm/X_celllm"][6:30])
    with pytest.raises(InputError, match="do not begin and end on a block of 4 cells"):
        embed_shard(data, tmp_path / "imported", tmp_path / "off.h5", 6, 12, batch_size=4, block_cells=6, progress=False)
    assert not (tmp_path / "off.h5").exists()


def test_shard_sizes_are_whole_blocks_and_ranges_on_blocks(tmp_path, checkpoint):
    assert plan_shards(10, 8, 4) == [(0, 8), (8, 10)] and plan_shards(8, 8, 4) == [(0, 8)] and plan_shards(3, 8, 4) == [(0, 3)]
    for shard_cells in (0, -8, 6):
        with pytest.raises(ValueError, match="not a whole number of blocks of 4 cells"):
            plan_shards(10, shard_cells, 4)
    data = tmp_path / "cells.h5ad"
    write_h5ad(make_counts(n_cells=10, seed=7), data)
    for start, stop, message in [(2, 6, "do not begin and end on a block"), (4, 6, "do not begin and end"), (8, 12, "not a range")]:
        with pytest.raises(InputError, match=message):
            embed_shard(data, checkpoint, tmp_path / "shard.h5", start, stop, block_cells=4, progress=False)
    assert not (tmp_path / "shard.h5").exists()


def test_the_gather_refuses_shards_that_do_not_cover_the_file_once(tmp_path, checkpoint):
    data = tmp_path / "cells.h5ad"
    write_h5ad(make_counts(n_cells=10, seed=7), data)
    for start, stop in [(0, 4), (4, 8), (8, 10)]:
        embed_shard(data, checkpoint, tmp_path / f"{start}.h5", start, stop, block_cells=4, progress=False)
    out = tmp_path / "out.h5ad"
    for shards, message in [
        (["0", "8"], "its shards miss cells at cell 4"),
        (["0", "4", "4", "8"], "its shards overlap at cell 8"),
        (["0", "4"], "its shards end at cell 8 of 10"),
    ]:
        with pytest.raises(InputError, match=message):
            gather_shards(data, checkpoint, [tmp_path / f"{name}.h5" for name in shards], out, block_cells=4)
        assert not out.exists()
    (tmp_path / "foreign.h5").write_bytes(b"not a shard")
    with pytest.raises(InputError, match="foreign.h5: not a readable embedding shard"):
        gather_shards(data, checkpoint, [tmp_path / "foreign.h5"], out)
