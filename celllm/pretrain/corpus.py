"""The pretraining corpus: a token store (memory-mapped), or .h5ad files tokenized in memory, with tissue labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from celllm.errors import InputError
from celllm.pretrain.store import TokenStore, is_token_store, report_cells, tokenized_blocks
from celllm.tokens import TokenConfig, TokenizedCells, Vocabulary

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    cells: TokenizedCells
    tissue: np.ndarray  # per cell: 0 normal, 1 tumor, IGNORE unknown
    vocab: Vocabulary


def concat_tokens(parts: list[TokenizedCells]) -> TokenizedCells:
    offsets = np.cumsum([0] + [p.indptr[-1] for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)])
    return TokenizedCells(
        indptr=indptr,
        gene_ids=np.concatenate([p.gene_ids for p in parts]),
        bins=np.concatenate([p.bins for p in parts]),
        n_dropped_genes=max(p.n_dropped_genes for p in parts),  # every block of a file drops the same genes
        n_truncated_cells=sum(p.n_truncated_cells for p in parts),
    )


def load_corpus(paths, cfg: TokenConfig, vocab: Vocabulary | None = None, scale_check: bool = True, store_hashes: bool = True) -> Corpus:
    """The pretraining cells: a token store (one folder, memory-mapped, see celllm.pretrain.store),
    or .h5ad files read and tokenized here (small data; the vocabulary defaults to their genes in
    order of appearance).

    Says (logging) which files have no tissue labels (their cells train every objective
    but tumor/normal), how many genes of each file are outside the vocabulary, how many
    cells have no vocabulary gene and how many were cut at max_len; refuses a corpus in
    which no cell has a vocabulary gene. A store is read whole and checked before the
    first step (`TokenStore.verify`; `store_hashes=False` skips its SHA-256s).
    """
    stores = [p for p in paths if is_token_store(p)]
    if stores:
        if len(paths) > 1:
            raise InputError(f"{stores[0]}: a token store is the whole corpus; give it alone, or tokenize every file into one store")
        store = TokenStore.open(stores[0], vocab, cfg)
        store.verify(hashes=store_hashes)
        log.info("%s: %d cells, %d tokens (token store)", store.path, len(store.cells), store.manifest["n_tokens"])
        return Corpus(store.cells, store.tissue, store.vocab)
    if vocab is None:
        vocab = Vocabulary.from_datasets(paths)
    parts, tissues = [], []
    for _, cells, tissue, _ in tokenized_blocks(paths, vocab, cfg, scale_check=scale_check):
        parts.append(cells)
        tissues.append(tissue)
    cells = concat_tokens(parts)
    report_cells(cells, ", ".join(map(str, paths)), vocab, cfg)
    return Corpus(cells, np.concatenate(tissues), vocab)
