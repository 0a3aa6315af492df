"""The gene-embedding table file: one row per gene, written atomically, read in vocabulary order.

Format: an ``.npz`` archive with two arrays, ``genes`` (fixed-width unicode,
so it loads without pickle) and ``embeddings`` (float32, one row per gene).
Rows are matched to a vocabulary by gene name, so a table can serve any
vocabulary whose genes it covers, in any order.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from celllm.errors import InputError
from celllm.outputs import atomic_path


def write_gene_embeddings(path: str | os.PathLike, genes: list[str], embeddings: np.ndarray) -> None:
    """Write the (len(genes), dim) table to `path` (.npz) atomically."""
    genes = [str(g) for g in genes]
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(genes):
        raise ValueError(f"embeddings must have shape ({len(genes)}, dim), got {embeddings.shape}")
    if len(set(genes)) != len(genes):
        raise ValueError("gene names must be unique")
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinite values")
    with atomic_path(path) as tmp:
        # A file handle, so numpy does not append ".npz" to the temporary name.
        with open(tmp, "wb") as handle:
            np.savez(handle, genes=np.array(genes, dtype=str), embeddings=embeddings)


def read_gene_embeddings(path: str | os.PathLike, vocab_genes: list[str], dim: int | None = None) -> torch.Tensor:
    """The rows of `vocab_genes`, in that order, as a (len(vocab_genes), dim) float32 tensor.

    Genes of the table outside the vocabulary are ignored. Raises InputError
    (one line naming the file) if the file is missing or unreadable, not an .npz
    archive, malformed, holds NaN or infinite values, lacks any vocabulary gene,
    or (with `dim`) has rows of another width than the encoder's.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: gene embedding file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: a single array, not a gene embedding table (expected an .npz with arrays 'genes' and 'embeddings')")
        with loaded as archive:
            if not {"genes", "embeddings"} <= set(archive.files):
                raise InputError(f"{path}: expected arrays 'genes' and 'embeddings' (has: {', '.join(archive.files) or 'none'})")
            genes, table = archive["genes"], archive["embeddings"]
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not a readable gene embedding .npz file ({type(exc).__name__}: {exc})") from None

    if genes.ndim != 1 or genes.dtype.kind != "U":
        raise InputError(f"{path}: 'genes' must be a 1-d array of gene names")
    if table.ndim != 2 or table.shape[0] != len(genes) or table.dtype.kind != "f":
        raise InputError(
            f"{path}: 'embeddings' must be a float matrix with one row per gene ({len(genes)}), got {table.dtype} {table.shape}"
        )
    bad_rows = ~np.isfinite(table).all(axis=1)
    if bad_rows.any():
        raise InputError(f"{path}: {int(bad_rows.sum())} row(s) contain NaN or infinite values (for example '{genes[bad_rows][0]}')")
    row_of = {str(g): i for i, g in enumerate(genes)}
    if len(row_of) != len(genes):
        raise InputError(f"{path}: gene names are not unique")
    missing = [g for g in map(str, vocab_genes) if g not in row_of]
    if missing:
        raise InputError(f"{path}: {len(missing)} of {len(vocab_genes)} vocabulary genes have no embedding (for example '{missing[0]}')")
    if dim is not None and table.shape[1] != dim:
        raise InputError(f"{path}: rows of width {table.shape[1]}, but the encoder's gene embeddings have dim {dim}")
    rows = np.fromiter((row_of[str(g)] for g in vocab_genes), dtype=np.int64, count=len(vocab_genes))
    return torch.from_numpy(np.ascontiguousarray(table[rows], dtype=np.float32))
