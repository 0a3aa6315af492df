"""The pretraining corpus: tokenized cells from one or more datasets, with tissue labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from celllm.errors import InputError
from celllm.io import read_dataset
from celllm.pretrain.objectives import IGNORE, TISSUE_CODES
from celllm.tokens import TokenConfig, TokenizedCells, Vocabulary, tokenize

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    cells: TokenizedCells
    tissue: np.ndarray  # per cell: 0 normal, 1 tumor, IGNORE unknown
    vocab: Vocabulary


def tissue_codes(values, source: str) -> np.ndarray:
    codes = np.array([TISSUE_CODES.get(str(v), -1) for v in values], dtype=np.int64)
    if (codes < 0).any():
        bad = sorted({str(v) for v, c in zip(values, codes) if c < 0})[:3]
        raise InputError(f"{source}: column 'tissue' must hold 'tumor' or 'normal', found {', '.join(bad)}")
    return codes


def concat_tokens(parts: list[TokenizedCells]) -> TokenizedCells:
    offsets = np.cumsum([0] + [p.indptr[-1] for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)])
    return TokenizedCells(
        indptr=indptr,
        gene_ids=np.concatenate([p.gene_ids for p in parts]),
        bins=np.concatenate([p.bins for p in parts]),
        n_dropped_genes=sum(p.n_dropped_genes for p in parts),
        n_truncated_cells=sum(p.n_truncated_cells for p in parts),
    )


def load_corpus(paths, cfg: TokenConfig, vocab: Vocabulary | None = None, scale_check: bool = True) -> Corpus:
    """Read and tokenize every dataset; the vocabulary defaults to their genes in order of appearance.

    Says (logging) which files have no tissue labels (their cells train every objective
    but tumor/normal), how many cells have no vocabulary gene and how many were cut
    at max_len; refuses a corpus in which no cell has a vocabulary gene.
    """
    if not paths:
        raise InputError("no pretraining data given (use --data FILE.h5ad)")
    datasets = [(str(p), read_dataset(p, scale_check=scale_check)) for p in paths]
    vocab = vocab or Vocabulary.union(adata.var_names for _, adata in datasets)
    parts, tissues = [], []
    for source, adata in datasets:
        parts.append(tokenize(adata.X, adata.var_names, vocab, cfg, source))
        if "tissue" in adata.obs:
            tissues.append(tissue_codes(adata.obs["tissue"].to_numpy(), source))
        else:
            log.warning("%s: no 'tissue' column, so its %d cells do not train the tumor/normal objective", source, adata.n_obs)
            tissues.append(np.full(adata.n_obs, IGNORE, dtype=np.int64))
    cells = concat_tokens(parts)
    empty = int((cells.lengths() == 0).sum())
    if empty == len(cells):
        raise InputError(f"no cell of {', '.join(map(str, paths))} expresses a gene of the {len(vocab)}-gene vocabulary")
    if empty:
        log.warning("%d of %d pretraining cells express no vocabulary gene; they are kept as [CLS]-only cells", empty, len(cells))
    if cells.n_truncated_cells:
        log.info("%d of %d pretraining cells have more than %d expressed genes and are cut (%s)", cells.n_truncated_cells, len(cells),
                 cfg.max_len - 1, cfg.truncation)
    return Corpus(cells, np.concatenate(tissues), vocab)
