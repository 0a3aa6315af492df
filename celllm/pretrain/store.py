"""The token store: a pretraining corpus tokenized once, as memory-mapped arrays on disk.

Layout of a store folder (written atomically by `build_token_store`):

    manifest.json   format, counts, dtypes, the tokens config, the vocabulary's SHA-256,
                    the source files, and the SHA-256 of every array file
    vocab.txt       the vocabulary, one gene per line
    offsets.bin     int64, n_cells + 1: cell i's tokens are [offsets[i], offsets[i + 1])
    gene_ids.bin    the smallest unsigned integer type that holds the vocabulary (uint16 up to 65,534 genes)
    bins.bin        uint8 expression bins
    tissue.bin      int8 per cell: 0 normal, 1 tumor, IGNORE unknown

Every process that reads a store maps the same files, so the operating system
keeps one copy in its page cache for all of them: the memory of a rank does not
grow with the corpus. Tokenizing reads the .h5ad files a block of cells at a
time (`celllm.io.DatasetBlocks`), so building a store needs memory for one
block, not for the corpus. A store is refused by a run whose vocabulary or
tokens config differs from the one it was built with. The same layout is
Geneformer's and BioNeMo's idea (a tokenized corpus read in place), kept here to
four flat arrays because that is all a CellLM cell is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from celllm.errors import InputError
from celllm.io import DatasetBlocks, atomic_path
from celllm.pretrain.objectives import IGNORE, tissue_codes
from celllm.tokens import TokenConfig, TokenizedCells, Vocabulary, tokenize

log = logging.getLogger(__name__)

FORMAT = "celllm-token-store/1"
MANIFEST, VOCAB = "manifest.json", "vocab.txt"
ARRAYS = {"offsets": "offsets.bin", "gene_ids": "gene_ids.bin", "bins": "bins.bin", "tissue": "tissue.bin"}
BLOCK_CELLS = 8192  # cells tokenized at once: ~12M tokens of paper-like cells, a few hundred MB at most


def gene_id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every gene id, [CLS] and PAD (vocab_size + 1)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size + 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _vocab_sha256(vocab: Vocabulary) -> str:
    return hashlib.sha256("\n".join(vocab.genes).encode()).hexdigest()


def is_token_store(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def tokenized_blocks(paths, vocab: Vocabulary, cfg: TokenConfig, block_cells: int = BLOCK_CELLS, scale_check: bool = True,
                     progress: bool = False) -> Iterator[tuple[TokenizedCells, np.ndarray]]:
    """(tokens, tissue codes) of each block of cells of the .h5ad files `paths`, in order.

    Reads a block at a time, so memory follows the block. A file without a `tissue`
    column gets IGNORE codes, with a warning (its cells train every objective but tumor/normal).
    """
    if not paths:
        raise InputError("no pretraining data given (use --data FILE.h5ad or --data TOKEN_STORE)")
    for path in paths:
        with DatasetBlocks(path, scale_check=scale_check) as dataset:
            if "tissue" in dataset.obs:
                tissue = tissue_codes(dataset.obs["tissue"].to_numpy(), str(path))
            else:
                log.warning("%s: no 'tissue' column, so its %d cells do not train the tumor/normal objective", path, dataset.n_obs)
                tissue = np.full(dataset.n_obs, IGNORE, dtype=np.int64)
            with tqdm(total=dataset.n_obs, desc=f"tokenize {Path(path).name}", unit="cell", disable=not progress) as bar:
                for start, X in dataset.blocks(block_cells):
                    cells = tokenize(X, dataset.var_names, vocab, cfg, str(path))
                    yield cells, tissue[start : start + len(cells)]
                    bar.update(len(cells))


def report_cells(cells: TokenizedCells, what: str, vocab: Vocabulary, cfg: TokenConfig) -> None:
    """Log the cells with no vocabulary gene and the cells cut at max_len; InputError if no cell has a token."""
    empty = int((cells.lengths() == 0).sum())
    if empty == len(cells):
        raise InputError(f"no cell of {what} expresses a gene of the {len(vocab)}-gene vocabulary")
    if empty:
        log.warning("%d of %d cells of %s express no vocabulary gene; they are kept as [CLS]-only cells", empty, len(cells), what)
    if cells.n_truncated_cells:
        log.info("%d of %d cells of %s have more than %d expressed genes and are cut (%s)", cells.n_truncated_cells, len(cells), what,
                 cfg.max_len - 1, cfg.truncation)


def build_token_store(paths, out, vocab: Vocabulary, cfg: TokenConfig, block_cells: int = BLOCK_CELLS,
                      scale_check: bool = True, progress: bool = True) -> Path:
    """Tokenize the .h5ad files `paths` (in order) into the store folder `out`, a block of cells at a time."""
    gene_dtype = gene_id_dtype(len(vocab))
    out = Path(out)
    n_tokens, n_dropped, n_truncated = 0, 0, 0
    offsets, tissues = [np.zeros(1, dtype=np.int64)], []
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with open(tmp / ARRAYS["gene_ids"], "wb") as genes_file, open(tmp / ARRAYS["bins"], "wb") as bins_file:
            for cells, tissue in tokenized_blocks(paths, vocab, cfg, block_cells, scale_check, progress):
                genes_file.write(cells.gene_ids.astype(gene_dtype).tobytes())
                bins_file.write(cells.bins.astype(np.uint8).tobytes())
                offsets.append(cells.indptr[1:] + n_tokens)
                tissues.append(tissue.astype(np.int8))
                n_tokens += int(cells.indptr[-1])
                n_truncated += cells.n_truncated_cells
                n_dropped = cells.n_dropped_genes
        offsets = np.concatenate(offsets)
        report_cells(TokenizedCells(offsets, np.zeros(0), np.zeros(0), n_truncated_cells=n_truncated), ", ".join(map(str, paths)), vocab, cfg)
        offsets.tofile(tmp / ARRAYS["offsets"])
        np.concatenate(tissues).tofile(tmp / ARRAYS["tissue"])
        vocab.save(tmp / VOCAB)
        manifest = {
            "format": FORMAT, "n_cells": len(offsets) - 1, "n_tokens": n_tokens, "n_truncated_cells": n_truncated,
            "n_dropped_genes": n_dropped, "vocab_size": len(vocab), "vocab_sha256": _vocab_sha256(vocab),
            "dtypes": {"offsets": "int64", "gene_ids": gene_dtype.name, "bins": "uint8", "tissue": "int8"},
            "tokens": cfg.to_dict(), "sources": [str(p) for p in paths],
            "sha256": {name: _sha256(tmp / file) for name, file in ARRAYS.items()},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: %d cells, %d tokens (%.2f bytes per token)", out, len(offsets) - 1, n_tokens,
             sum((out / f).stat().st_size for f in ARRAYS.values()) / max(1, n_tokens))
    return out


@dataclass
class TokenStore:
    """An opened store: its cells as memory-mapped arrays, the tissue codes, vocabulary and tokens config."""

    path: Path
    cells: TokenizedCells
    tissue: np.ndarray
    vocab: Vocabulary
    tokens: TokenConfig
    manifest: dict

    @classmethod
    def open(cls, path, vocab: Vocabulary | None = None, tokens: TokenConfig | None = None) -> "TokenStore":
        """Map a store; InputError if it is incomplete, or was built with another vocabulary or tokens config."""
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable token store ({type(exc).__name__})") from None
        if manifest.get("format") != FORMAT:
            raise InputError(f"{path}: not a token store of this version (format {manifest.get('format')!r}, expected {FORMAT})")
        stored_vocab = Vocabulary.load(path / VOCAB)
        if _vocab_sha256(stored_vocab) != manifest["vocab_sha256"]:
            raise InputError(f"{path / VOCAB}: not the vocabulary the store was built with")
        if vocab is not None and vocab != stored_vocab:
            raise InputError(f"{path}: built with another gene vocabulary ({len(stored_vocab)} genes) than this run's ({len(vocab)} genes); tokenize again")
        stored_tokens = TokenConfig.from_dict(manifest["tokens"])
        if tokens is not None and tokens != stored_tokens:
            changed = [f"{k} {v!r} -> {tokens.to_dict()[k]!r}" for k, v in stored_tokens.to_dict().items() if tokens.to_dict()[k] != v]
            raise InputError(f"{path}: built with other tokens options than this run's ({'; '.join(changed)}); tokenize again")
        lengths = {"offsets": manifest["n_cells"] + 1, "gene_ids": manifest["n_tokens"], "bins": manifest["n_tokens"], "tissue": manifest["n_cells"]}
        arrays = {}
        for name, file in ARRAYS.items():
            dtype = np.dtype(manifest["dtypes"][name])
            size = (path / file).stat().st_size if (path / file).exists() else -1
            if size != lengths[name] * dtype.itemsize:
                raise InputError(f"{path / file}: {size} bytes, the manifest says {lengths[name] * dtype.itemsize}; the store is incomplete or damaged")
            arrays[name] = np.memmap(path / file, dtype=dtype, mode="r", shape=(lengths[name],)) if lengths[name] else np.zeros(0, dtype)
        cells = TokenizedCells(arrays["offsets"], arrays["gene_ids"], arrays["bins"],
                               n_dropped_genes=manifest["n_dropped_genes"], n_truncated_cells=manifest["n_truncated_cells"])
        return cls(path, cells, np.asarray(arrays["tissue"], dtype=np.int64), stored_vocab, stored_tokens, manifest)

    def verify(self) -> None:
        """Compare every array file with its SHA-256 in the manifest (reads the whole store)."""
        for name, file in ARRAYS.items():
            if _sha256(self.path / file) != self.manifest["sha256"][name]:
                raise InputError(f"{self.path / file}: does not match its checksum in {MANIFEST}; the store is damaged, tokenize again")
