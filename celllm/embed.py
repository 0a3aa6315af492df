"""Cell embeddings from a pretrained CellLM checkpoint.

`celllm embed` (`embed_file`) streams: it reads the input a block of cells at a
time (celllm.io.DatasetBlocks), embeds each block in batches of alike length,
and writes each block's embeddings straight into the output file, a copy of the
input with `.obsm["X_celllm"]` and `.uns["celllm"]` added. Neither the
expression matrix nor all the tokens are ever held whole, so memory follows the
block and the batch, not the number of cells. Its output is written by
`write_embedding`, the one writer, which also writes the output of a file
embedded in several jobs, from their shard files (`embed_shard` for each range
of cells, `gather_shards`; which ranges, and why the result is the same bit for
bit: celllm.shards).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from celllm.checkpoint import checkpoint_hash, load_encoder, load_vocab_and_config
from celllm.errors import InputError
from celllm.io import DatasetBlocks
from celllm.model import CellLMEncoder
from celllm.outputs import atomic_path
from celllm.released import RELEASED_BATCH
from celllm.tokens import TokenConfig, TokenizedCells, pad_ragged, padded_length, tokenize

log = logging.getLogger(__name__)

OBSM_KEY = "X_celllm"
BLOCK_CELLS = 8192  # cells read, tokenized and embedded at once by embed_file
BATCH_TOKENS = 65_536  # padded tokens of one forward pass at most, so the longest cells do not set the peak
DEFAULT_BATCH = 64  # cells of one forward pass at most (this project's encoder)


def batches(lengths: np.ndarray, batch_size: int, ordered: bool) -> Iterator[tuple[np.ndarray, int, int]]:
    """(cells, padded length, rows) of each forward pass. By length: each batch holds cells padded to one
    `padded_length`, at most `batch_size` of them and about BATCH_TOKENS tokens, in a shape of `rows` rows
    ([CLS]-only rows fill a bucket's last batch), so that batches come in few shapes whose freed memory the
    allocator reuses (celllm.tokens.padded_length). `ordered`: in the data's order, `batch_size` at a time,
    padded to the longest (the released encoder, whose batches are fixed)."""
    if ordered:
        for start in range(0, len(lengths), batch_size):
            rows = np.arange(start, min(start + batch_size, len(lengths)))
            yield rows, 0, len(rows)
        return
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        padded = padded_length(1 + int(lengths[order[start]]))
        capacity = max(1, min(batch_size, BATCH_TOKENS // padded))
        stop = min(start + capacity, len(order))
        stop = start + int(np.searchsorted(lengths[order[start:stop]], padded - 1, side="right"))  # the cells that fit `padded`
        yield order[start:stop], padded, capacity
        start = stop


@torch.no_grad()
def embed_tokens(
    encoder: CellLMEncoder,
    cells: TokenizedCells,
    cfg: TokenConfig,
    batch_size: int | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """[CLS] embeddings of tokenized cells, (n_cells, dim) float32.

    This project's (masked) encoder: cells are batched by length to waste little
    padding (`batches`); a cell's embedding does not depend on its batch, so the
    order is free. The released encoder's does (README: measurably): its cells go in
    the data's order, `batch_size` (default RELEASED_BATCH, the authors') at a time.
    """
    encoder.eval().to(device)
    released = encoder.cfg.attention == "released"
    batch_size = batch_size or (RELEASED_BATCH if released else DEFAULT_BATCH)
    out = np.empty((len(cells), encoder.cfg.dim), dtype=np.float32)
    with tqdm(total=len(cells), desc="embed", unit="cell", disable=not progress) as bar:
        for rows, padded, capacity in batches(cells.lengths(), batch_size, ordered=released):
            part = cells.select(rows)
            indptr = np.pad(part.indptr, (0, capacity - len(rows)), mode="edge")  # [CLS]-only rows fill the batch's shape
            batch = pad_ragged(indptr, part.gene_ids, part.bins, encoder.n_genes, cfg, length=padded)
            embedded = encoder.embed(batch["gene_ids"].to(device), batch["bins"].to(device), batch["mask"].to(device))
            out[rows] = embedded[: len(rows)].float().cpu().numpy()
            bar.update(len(rows))
    return out


@dataclass
class Embedded:
    """Embeddings of some cells, and what their tokenizing dropped or cut."""

    embeddings: np.ndarray
    n_dropped_genes: int  # genes of the input outside the vocabulary
    n_empty_cells: int  # cells with no vocabulary gene: they all get the [CLS]-only embedding
    n_truncated_cells: int  # cells cut at max_len


class CellEmbedder:
    """A checkpoint loaded once, embedding any number of expression matrices."""

    def __init__(self, checkpoint, device: str | None = None, batch_size: int | None = None, accept_edited_config: bool = False):
        self.checkpoint = Path(checkpoint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.encoder, self.vocab, self.cfg = load_encoder(checkpoint, accept_edited_config=accept_edited_config)

    def embed(self, X, genes, source: str = "data", progress: bool = False) -> Embedded:
        """Embeddings of the cells of a count matrix (cells x `genes`, float32 CSR)."""
        cells = tokenize(X, genes, self.vocab, self.cfg.tokens, source)
        embeddings = embed_tokens(self.encoder, cells, self.cfg.tokens, self.batch_size, self.device, progress)
        return Embedded(embeddings, cells.n_dropped_genes, int((cells.lengths() == 0).sum()), cells.n_truncated_cells)

    def __call__(self, adata: ad.AnnData, source: str = "data", progress: bool = False) -> tuple[np.ndarray, int]:
        """Embeddings of every cell of a validated AnnData, and how many of its genes the vocabulary lacks."""
        result = self.embed(adata.X, adata.var_names, source, progress)
        self.report(result.n_empty_cells, result.n_truncated_cells, len(adata), source)
        return result.embeddings, result.n_dropped_genes

    def report(self, n_empty: int, n_truncated: int, n_cells: int, source: str) -> None:
        """`report_cells` with this checkpoint's vocabulary and tokens config."""
        report_cells(n_empty, n_truncated, n_cells, source, len(self.vocab), self.cfg.tokens)

    def embedding_block(self, block_cells: int = BLOCK_CELLS) -> int:
        """The cells `embed_blocks` reads and embeds at once: `block_cells`, for the released encoder rounded down to
        whole batches (one at least), so that its batches run through the file in order."""
        if self.cfg.encoder.attention != "released":
            return block_cells
        batch = self.batch_size or RELEASED_BATCH
        return max(batch, block_cells // batch * batch)

    def embed_blocks(
        self, dataset: DatasetBlocks, start: int = 0, stop: int | None = None, block_cells: int = BLOCK_CELLS, progress: bool = False
    ) -> Iterator[tuple[int, Embedded]]:
        """(first cell, its block's Embedded) of each block (`block_cells`) of the cells `start` to `stop` - 1 of an open
        dataset (default: all), the first block beginning at `start`."""
        stop = dataset.n_obs if stop is None else stop
        with tqdm(total=stop - start, desc="embed", unit="cell", disable=not progress) as bar:
            for first, X in dataset.blocks(self.embedding_block(block_cells), start, stop):
                yield first, self.embed(X, dataset.var_names, str(dataset.path))
                bar.update(X.shape[0])


def report_cells(n_empty: int, n_truncated: int, n_cells: int, source: str, n_genes: int, tokens: TokenConfig) -> None:
    """Warn about cells with no gene of the `n_genes`-gene vocabulary (refused when every cell is one) and cells cut at max_len."""
    if n_empty == n_cells:
        raise InputError(f"{source}: no cell expresses a gene of the checkpoint's {n_genes}-gene vocabulary")
    if n_empty:
        log.warning("%s: %d of %d cells express no vocabulary gene; they all get the same [CLS]-only embedding", source, n_empty, n_cells)
    if n_truncated:
        log.info(
            "%s: %d of %d cells have more than %d expressed genes and keep %s",
            source,
            n_truncated,
            n_cells,
            tokens.max_len - 1,
            "their most expressed ones" if tokens.truncation == "top_expressed" else "the first ones in vocabulary order",
        )


def written_by_embed(path) -> bool:
    """Whether the .h5ad `path` is an output of `celllm embed` (its .uns['celllm'] names a checkpoint), so it may be replaced."""
    try:
        with h5py.File(path, "r") as handle:
            return "checkpoint_sha256" in handle.get("uns/celllm", {})
    except OSError:
        return False


OUTPUT_CHUNK = 4096  # rows of .obsm[OBSM_KEY] compressed together


class EmbeddingRows:
    """The `.obsm[OBSM_KEY]` of an output being written (`write_embedding`), rows in order from the first cell.

    Rows are written a whole chunk (OUTPUT_CHUNK rows) at a time, however they arrive: each chunk is compressed
    once, and the file's bytes do not depend on how the embeddings were cut (blocks of one job, or shards)."""

    def __init__(self, target: h5py.Dataset):
        self._target, self._pending, self._written = target, [], 0
        self.provenance: dict | None = None

    @property
    def received(self) -> int:
        return self._written + sum(len(rows) for rows in self._pending)

    def write(self, first: int, rows: np.ndarray) -> None:
        """The embeddings of the cells `first` to `first + len(rows) - 1`, which follow those written before."""
        if first != self.received:
            raise ValueError(f"embeddings of cells from {first} on, where cell {self.received} comes next")
        self._pending.append(np.asarray(rows, dtype=np.float32))
        self._flush(whole_chunks=True)

    def _flush(self, whole_chunks: bool) -> None:
        held = self.received - self._written
        size = held // self._target.chunks[0] * self._target.chunks[0] if whole_chunks else held
        if size:
            rows = np.concatenate(self._pending)
            self._target[self._written : self._written + size] = rows[:size]
            self._pending, self._written = [rows[size:]], self._written + size

    def finish(self, checkpoint, checkpoint_sha256: str, dropped_genes: int) -> None:
        """The last rows, and the provenance `.uns['celllm']` will hold; every cell must have its row by now."""
        if self.received != self._target.shape[0]:
            raise ValueError(f"embeddings of {self.received} cells, where the file has {self._target.shape[0]}")
        self._flush(whole_chunks=False)
        self.provenance = {
            "checkpoint": str(Path(checkpoint).resolve()),
            "checkpoint_sha256": checkpoint_sha256,
            "dropped_genes": dropped_genes,
        }


@contextlib.contextmanager
def write_embedding(in_path, out_path, n_obs: int, dim: int) -> Iterator[EmbeddingRows]:
    """The one writer of `celllm embed`'s output, whether its embeddings come from one job (`embed_file`) or from
    shards (`gather_shards`): OUT = a copy of IN with `.obsm[OBSM_KEY]` (n_obs x dim float32, the rows
    given to the yielded EmbeddingRows) and `.uns['celllm']` (its `finish`). Nothing is published unless the block
    ends with `finish` called: a failure on the way leaves no output."""
    with atomic_path(out_path) as tmp:
        shutil.copyfile(in_path, tmp)  # everything of the input is kept; only the embedding is added
        with h5py.File(tmp, "r+") as out:
            obsm = out.require_group("obsm")
            obsm.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
            if OBSM_KEY in obsm:
                del obsm[OBSM_KEY]
            target = obsm.create_dataset(
                OBSM_KEY, shape=(n_obs, dim), dtype=np.float32, chunks=(min(n_obs, OUTPUT_CHUNK), dim), compression="gzip"
            )
            target.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})  # anndata's dense array
            rows = EmbeddingRows(target)
            yield rows
            if rows.provenance is None:
                raise RuntimeError(f"{out_path}: written without EmbeddingRows.finish")
            uns = out.require_group("uns")
            if "celllm" in uns:
                del uns["celllm"]
            ad.io.write_elem(uns, "celllm", rows.provenance)


def embed_file(
    in_path,
    checkpoint,
    out_path,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool = True,
    scale_check: bool = True,
    block_cells: int = BLOCK_CELLS,
    accept_edited_config: bool = False,
) -> int:
    """`celllm embed`: OUT.h5ad = IN.h5ad with .obsm['X_celllm'] and .uns['celllm'], streamed. Returns the dropped-gene count."""
    embedder = CellEmbedder(checkpoint, device, batch_size, accept_edited_config)
    dropped = empty = truncated = 0
    with DatasetBlocks(in_path, scale_check=scale_check) as dataset:
        with write_embedding(in_path, out_path, dataset.n_obs, embedder.encoder.cfg.dim) as output:
            for first, part in embedder.embed_blocks(dataset, block_cells=block_cells, progress=progress):
                output.write(first, part.embeddings)
                dropped, empty, truncated = part.n_dropped_genes, empty + part.n_empty_cells, truncated + part.n_truncated_cells
            embedder.report(empty, truncated, dataset.n_obs, str(in_path))
            output.finish(checkpoint, checkpoint_hash(checkpoint), dropped)
    warn_dropped_genes(in_path, dropped, len(dataset.var_names))
    return dropped


def warn_dropped_genes(source, dropped: int, n_genes: int) -> None:
    if dropped:
        log.warning("%s: %d of %d genes are not in the checkpoint's vocabulary and were dropped", source, dropped, n_genes)


# A file embedded in several jobs (celllm.shards plans which cells each embeds): each job writes a shard file,
# HDF5 with the embeddings of its cells and what their tokenizing dropped or cut as attributes, and one job
# gathers the shards through `write_embedding`, the single job's writer.
SHARD_FORMAT = "celllm-embedding-shard/1"
EMBEDDINGS = "embeddings"  # the shard file's (cells, dim) float32 dataset


def embed_shard(
    in_path,
    checkpoint,
    out_path,
    start: int,
    stop: int,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool = True,
    scale_check: bool = True,
    block_cells: int = BLOCK_CELLS,
    accept_edited_config: bool = False,
) -> None:
    """The embeddings of the cells `start` to `stop` - 1 of the .h5ad `in_path`, as `embed_file` with the same options
    computes them, and what their tokenizing dropped or cut, to the shard file `out_path` (HDF5). Memory follows the block."""
    embedder = CellEmbedder(checkpoint, device, batch_size, accept_edited_config)
    block = embedder.embedding_block(block_cells)
    with DatasetBlocks(in_path, scale_check=scale_check) as dataset:
        if not 0 <= start < stop <= dataset.n_obs:
            raise InputError(f"{in_path}: cells {start}:{stop} are not a range of its {dataset.n_obs} cells")
        if start % block or (stop % block and stop != dataset.n_obs):
            raise InputError(
                f"{in_path}: cells {start}:{stop} do not begin and end on a block of {block} cells, so they would "
                "not be embedded as the whole file is; choose a range of whole blocks"
            )
        dim, empty, truncated, dropped = embedder.encoder.cfg.dim, 0, 0, 0
        with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as out:
            target = out.create_dataset(EMBEDDINGS, shape=(stop - start, dim), dtype=np.float32)
            for first, part in embedder.embed_blocks(dataset, start, stop, block_cells, progress):
                target[first - start : first - start + len(part.embeddings)] = part.embeddings
                dropped, empty, truncated = part.n_dropped_genes, empty + part.n_empty_cells, truncated + part.n_truncated_cells
            out.attrs.update(
                format=SHARD_FORMAT,
                source=str(in_path),
                n_obs=dataset.n_obs,
                start=start,
                stop=stop,
                block_cells=block,
                checkpoint_sha256=checkpoint_hash(checkpoint),
                dropped_genes=dropped,
                empty_cells=empty,
                truncated_cells=truncated,
            )
    log.info("%s: cells %d:%d embedded (%d without a vocabulary gene, %d cut at max_len)", in_path, start, stop, empty, truncated)


SHARD_ATTRS = ("format", "n_obs", "start", "stop", "checkpoint_sha256", "dropped_genes", "empty_cells", "truncated_cells")


def _open_shard(path) -> tuple[h5py.File, dict]:
    """An open shard file and its attributes, or InputError naming the file."""
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable embedding shard ({exc})") from None
    attrs = {key: handle.attrs.get(key) for key in SHARD_ATTRS}
    if attrs["format"] != SHARD_FORMAT or any(value is None for value in attrs.values()) or EMBEDDINGS not in handle:
        handle.close()
        raise InputError(f"{path}: not an embedding shard (expected format {SHARD_FORMAT})")
    return handle, {key: value if key in ("format", "checkpoint_sha256") else int(value) for key, value in attrs.items()}


def gather_shards(in_path, checkpoint, shard_paths, out_path, block_cells: int = BLOCK_CELLS, accept_edited_config: bool = False) -> int:
    """`embed_file`'s output from the shards of `in_path` (in any order): OUT.h5ad = IN.h5ad with .obsm['X_celllm'] and
    .uns['celllm'], by the same writer. The shards must cover every cell once and come from `checkpoint`; nothing
    is written otherwise. Memory: `block_cells` rows of embeddings at a time. Returns the dropped-gene count."""
    vocab, cfg = load_vocab_and_config(checkpoint, accept_edited_config)
    digest, dim = checkpoint_hash(checkpoint), cfg.encoder.dim
    with DatasetBlocks(in_path, scale_check=False) as dataset:  # its cells and genes; expression is not read
        n_obs, n_genes = dataset.n_obs, len(dataset.var_names)
    with contextlib.ExitStack() as stack:
        shards = []
        for path in shard_paths:
            handle, attrs = _open_shard(path)
            stack.callback(handle.close)
            shards.append((handle[EMBEDDINGS], attrs, path))
        shards.sort(key=lambda shard: shard[1]["start"])
        covered = 0  # cells before it are in the shards checked so far
        for embeddings, attrs, path in shards:
            if attrs["checkpoint_sha256"] != digest:
                raise InputError(f"{path}: embedded with another checkpoint than {checkpoint} (the weights' SHA-256 differs)")
            if attrs["n_obs"] != n_obs:
                raise InputError(f"{path}: a shard of a file of {attrs['n_obs']} cells, not of {in_path} ({n_obs} cells)")
            if embeddings.shape != (attrs["stop"] - attrs["start"], dim):
                raise InputError(f"{path}: damaged (embeddings of shape {embeddings.shape} for cells {attrs['start']}:{attrs['stop']})")
            if attrs["start"] != covered:
                where = "overlap" if attrs["start"] < covered else "miss cells"
                raise InputError(f"{in_path}: its shards {where} at cell {covered} ({path} begins at cell {attrs['start']})")
            covered = attrs["stop"]
        if covered != n_obs:
            raise InputError(f"{in_path}: its shards end at cell {covered} of {n_obs}")
        dropped = {attrs["dropped_genes"] for _, attrs, _ in shards}
        if len(dropped) != 1:
            raise InputError(f"{in_path}: its shards count different genes outside the vocabulary ({sorted(dropped)}): not of one file")
        dropped = dropped.pop()
        with write_embedding(in_path, out_path, n_obs, dim) as output:
            for embeddings, attrs, _ in shards:
                for first in range(0, len(embeddings), block_cells):
                    output.write(attrs["start"] + first, embeddings[first : first + block_cells])
            empty, truncated = (sum(attrs[key] for _, attrs, _ in shards) for key in ("empty_cells", "truncated_cells"))
            report_cells(empty, truncated, n_obs, str(in_path), len(vocab), cfg.tokens)
            output.finish(checkpoint, digest, dropped)
    warn_dropped_genes(in_path, dropped, n_genes)
    return dropped
