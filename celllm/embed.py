"""Cell embeddings from a pretrained CellLM checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import torch
from tqdm.auto import tqdm

from celllm.checkpoint import checkpoint_hash, load_checkpoint
from celllm.errors import InputError
from celllm.io import read_dataset, write_h5ad
from celllm.model import CellLMEncoder
from celllm.tokens import TokenConfig, TokenizedCells, pad_batch, tokenize

log = logging.getLogger(__name__)

OBSM_KEY = "X_celllm"


@torch.no_grad()
def embed_tokens(encoder: CellLMEncoder, cells: TokenizedCells, cfg: TokenConfig, batch_size: int = 64, device: str = "cpu", progress: bool = False) -> np.ndarray:
    """[CLS] embeddings of tokenized cells, (n_cells, dim) float32.

    Cells are batched by length to waste little padding; since a cell's
    embedding does not depend on its batch, the order is free.
    """
    encoder.eval().to(device)
    order = np.argsort(cells.lengths(), kind="stable")
    out = np.empty((len(cells), encoder.cfg.dim), dtype=np.float32)
    starts = range(0, len(cells), batch_size)
    for start in tqdm(starts, desc="embed", unit="batch", disable=not progress):
        rows = order[start : start + batch_size]
        batch = pad_batch([cells.cell(int(i)) for i in rows], encoder.n_genes, cfg)
        out[rows] = encoder.embed(batch["gene_ids"].to(device), batch["bins"].to(device), batch["mask"].to(device)).float().cpu().numpy()
    return out


class CellEmbedder:
    """A checkpoint loaded once, embedding any number of AnnData objects."""

    def __init__(self, checkpoint, device: str | None = None, batch_size: int = 64):
        self.checkpoint = Path(checkpoint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        model, self.vocab, self.cfg = load_checkpoint(checkpoint)
        self.encoder = model.encoder

    def __call__(self, adata: ad.AnnData, source: str = "data", progress: bool = False) -> tuple[np.ndarray, int]:
        """Embeddings of every cell of a validated AnnData, and how many of its genes the vocabulary lacks.

        A cell that expresses no vocabulary gene gets the [CLS]-only embedding (the same for
        every such cell): they are counted in a warning, and refused when every cell is one.
        """
        cells = tokenize(adata.X, adata.var_names, self.vocab, self.cfg.tokens, source)
        empty = int((cells.lengths() == 0).sum())
        if empty == len(cells):
            raise InputError(f"{source}: no cell expresses a gene of the checkpoint's {len(self.vocab)}-gene vocabulary")
        if empty:
            log.warning("%s: %d of %d cells express no vocabulary gene; they all get the same [CLS]-only embedding", source, empty, len(cells))
        if cells.n_truncated_cells:
            log.info("%s: %d of %d cells have more than %d expressed genes and keep %s", source, cells.n_truncated_cells, len(cells),
                     self.cfg.tokens.max_len - 1, "their most expressed ones" if self.cfg.tokens.truncation == "top_expressed" else "the first ones in vocabulary order")
        return embed_tokens(self.encoder, cells, self.cfg.tokens, self.batch_size, self.device, progress), cells.n_dropped_genes


def embed_file(in_path, checkpoint, out_path, batch_size: int = 64, device: str | None = None, progress: bool = True,
               scale_check: bool = True) -> int:
    """`celllm embed`: read IN.h5ad, write OUT.h5ad with .obsm['X_celllm']. Returns the dropped-gene count."""
    adata = read_dataset(in_path, scale_check=scale_check)
    embeddings, dropped = CellEmbedder(checkpoint, device, batch_size)(adata, source=str(in_path), progress=progress)
    if dropped:
        log.warning("%s: %d of %d genes are not in the checkpoint's vocabulary and were dropped", in_path, dropped, adata.n_vars)
    adata.obsm[OBSM_KEY] = embeddings
    adata.uns["celllm"] = {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_sha256": checkpoint_hash(checkpoint), "dropped_genes": dropped}
    write_h5ad(adata, out_path)
    return dropped
