"""Cell embeddings from a pretrained CellLM checkpoint.

`celllm embed` (`embed_file`) streams: it reads the input a block of cells at a
time (celllm.io.DatasetBlocks), embeds each block in batches of alike length,
and writes each block's embeddings straight into the output file, a copy of the
input with `.obsm["X_celllm"]` and `.uns["celllm"]` added. Neither the
expression matrix nor all the tokens are ever held whole, so memory follows the
block and the batch, not the number of cells.
"""

from __future__ import annotations

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

from celllm.checkpoint import checkpoint_hash, load_encoder
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
        """Warn about cells with no vocabulary gene (refused when every cell is one) and cells cut at max_len."""
        if n_empty == n_cells:
            raise InputError(f"{source}: no cell expresses a gene of the checkpoint's {len(self.vocab)}-gene vocabulary")
        if n_empty:
            log.warning(
                "%s: %d of %d cells express no vocabulary gene; they all get the same [CLS]-only embedding", source, n_empty, n_cells
            )
        if n_truncated:
            tokens = self.cfg.tokens
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
    if embedder.cfg.encoder.attention == "released":  # blocks of whole batches, so the batches run through the file in order
        batch = batch_size or RELEASED_BATCH
        block_cells = max(batch, block_cells // batch * batch)
    dropped = empty = truncated = 0
    with DatasetBlocks(in_path, scale_check=scale_check) as dataset, atomic_path(out_path) as tmp:
        shutil.copyfile(in_path, tmp)  # everything of the input is kept; only the embedding is added
        with h5py.File(tmp, "r+") as out:
            obsm = out.require_group("obsm")
            obsm.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
            if OBSM_KEY in obsm:
                del obsm[OBSM_KEY]
            target = obsm.create_dataset(
                OBSM_KEY,
                shape=(dataset.n_obs, embedder.encoder.cfg.dim),
                dtype=np.float32,
                chunks=(min(dataset.n_obs, 4096), embedder.encoder.cfg.dim),
                compression="gzip",
            )
            target.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})  # anndata's dense array
            with tqdm(total=dataset.n_obs, desc="embed", unit="cell", disable=not progress) as bar:
                for start, X in dataset.blocks(block_cells):
                    part = embedder.embed(X, dataset.var_names, str(in_path))
                    target[start : start + X.shape[0]] = part.embeddings
                    dropped, empty, truncated = part.n_dropped_genes, empty + part.n_empty_cells, truncated + part.n_truncated_cells
                    bar.update(X.shape[0])
            embedder.report(empty, truncated, dataset.n_obs, str(in_path))
            provenance = {
                "checkpoint": str(Path(checkpoint).resolve()),
                "checkpoint_sha256": checkpoint_hash(checkpoint),
                "dropped_genes": dropped,
            }
            uns = out.require_group("uns")
            if "celllm" in uns:
                del uns["celllm"]
            ad.io.write_elem(uns, "celllm", provenance)
    if dropped:
        log.warning("%s: %d of %d genes are not in the checkpoint's vocabulary and were dropped", in_path, dropped, len(dataset.var_names))
    return dropped
