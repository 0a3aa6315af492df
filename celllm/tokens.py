"""Cells as token sequences: the non-zero genes of each cell, with a [CLS] in front.

Each token is a pair (gene id, expression bin). Zero genes are dropped, not
binned, as in the released code. Cells with more than `max_len - 1` non-zero
genes keep their most expressed ones by default; the released code keeps the
first ones in vocabulary order, which for bulk profiles (almost every gene
non-zero) means the alphabetically first genes (`truncation: vocabulary_order`).
Batches are padded only to their own longest cell.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from celllm.errors import InputError
from celllm.options import Options, option
from celllm.preprocess import BINNINGS, bin_values, normalize_log2

# How a cell longer than max_len - 1 genes is cut: keep its most expressed genes (ties in
# vocabulary order), or its first genes in vocabulary order as the released code does.
TRUNCATIONS = ("top_expressed", "vocabulary_order")


@dataclass(frozen=True)
class TokenConfig(Options):
    """How expression becomes tokens."""

    label = "tokens option"

    binning: str = option("floor_clip", choices=BINNINGS)  # released code; or "quantile"
    n_bins: int = option(6, low=2)  # released code: bins 0..5
    target_sum: float = option(1e4, low=0.0, low_open=True)  # normalize_total target before log2(1 + x)
    max_len: int = option(6000, low=2)  # tokens per cell including [CLS] (released code)
    truncation: str = option("top_expressed", choices=TRUNCATIONS)  # or "vocabulary_order" (released code)

    # Special bin tokens follow the expression bins; CLS and PAD keep the
    # released code's numbers (6 and 7 with six bins).
    @property
    def cls_bin(self) -> int:
        return self.n_bins

    @property
    def pad_bin(self) -> int:
        return self.n_bins + 1

    @property
    def mask_bin(self) -> int:
        return self.n_bins + 2

    @property
    def n_bin_tokens(self) -> int:
        return self.n_bins + 3


# Gene ids: the n genes of a vocabulary are 0..n-1, then [CLS] is n and PAD n + 1 (the released
# model's layout: its gene table ends with a row for each). The one owner of these ids.
N_SPECIAL_GENE_IDS = 2  # [CLS], PAD


def cls_gene_id(n_genes: int) -> int:
    """The gene id of [CLS] with a vocabulary of `n_genes` genes."""
    return n_genes


def pad_gene_id(n_genes: int) -> int:
    """The gene id of PAD with a vocabulary of `n_genes` genes (the largest id)."""
    return n_genes + 1


def gene_table_rows(n_genes: int) -> int:
    """Rows of a gene embedding table: the genes, [CLS] and PAD."""
    return n_genes + N_SPECIAL_GENE_IDS


class Vocabulary:
    """Ordered gene symbols; a gene's id is its position. [CLS] and PAD follow (`cls_gene_id`, `pad_gene_id`)."""

    def __init__(self, genes):
        self.genes = [str(g) for g in genes]
        if not self.genes:
            raise ValueError("a vocabulary needs at least one gene")
        self.index = {g: i for i, g in enumerate(self.genes)}
        if len(self.index) != len(self.genes):
            raise ValueError("vocabulary genes are not unique")

    def __len__(self) -> int:
        return len(self.genes)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.genes == other.genes

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.genes) + "\n")

    def sha256(self) -> str:
        """SHA-256 of the gene order (the rows of a gene embedding, a store's gene ids)."""
        return hashlib.sha256("\n".join(self.genes).encode()).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """One gene symbol per line; InputError naming the file for a missing, empty or duplicated gene."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: vocabulary file not found")
        from celllm.io import read_text_lines  # here, as in from_datasets: celllm.io loads anndata

        genes = [line.strip() for line in read_text_lines(path, "vocabulary") if line.strip()]
        if not genes:
            raise InputError(f"{path}: the vocabulary is empty (expected one gene symbol per line)")
        first = {}
        for number, gene in enumerate(genes, start=1):
            if gene in first:
                raise InputError(f"{path}: gene '{gene}' is listed twice (genes {first[gene]} and {number})")
            first[gene] = number
        return cls(genes)

    @classmethod
    def from_datasets(cls, paths, keep=None) -> Vocabulary:
        """The genes of several .h5ad files (expression is not loaded).

        Without `keep`: every gene, in order of first appearance. With `keep` (a
        set of symbols, e.g. HGNC protein-coding genes): the genes of the files
        that are in it, sorted, so the vocabulary does not depend on file order.
        """
        from celllm.io import dataset_genes

        genes = cls.union(dataset_genes(path) for path in paths)
        if keep is None:
            return genes
        kept = sorted(g for g in genes.genes if g in keep)
        if not kept:
            raise InputError(f"no gene of {', '.join(map(str, paths))} is in the allowed gene set")
        return cls(kept)

    @classmethod
    def union(cls, gene_lists) -> Vocabulary:
        """Genes of several datasets, in order of first appearance."""
        return cls(dict.fromkeys(g for genes in gene_lists for g in map(str, genes)))


@dataclass
class TokenizedCells:
    """Ragged token sequences for many cells, stored CSR-like (without [CLS])."""

    indptr: np.ndarray  # (n_cells + 1,)
    gene_ids: np.ndarray  # int64 vocabulary ids, ascending within a cell
    bins: np.ndarray  # int64 expression bins
    n_dropped_genes: int = 0  # genes of the input absent from the vocabulary
    n_truncated_cells: int = 0  # cells cut to max_len - 1 genes

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def cell(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.indptr[i], self.indptr[i + 1]
        return self.gene_ids[start:stop], self.bins[start:stop]

    def select(self, rows) -> TokenizedCells:
        """The cells `rows`, in that order, as int64 arrays in memory (one gather, also from memory-mapped arrays)."""
        indptr, source = ragged_take(self.indptr, rows)
        return TokenizedCells(indptr, np.asarray(self.gene_ids[source], dtype=np.int64), np.asarray(self.bins[source], dtype=np.int64))


def ragged_take(indptr: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
    """Rows `rows` of ragged rows stored flat: their new indptr, and the flat positions to gather."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.asarray(indptr[rows], dtype=np.int64)
    lengths = np.asarray(indptr[rows + 1], dtype=np.int64) - starts
    new = np.concatenate([[0], np.cumsum(lengths)])
    return new, np.repeat(starts - new[:-1], lengths) + np.arange(new[-1])


def ragged_rows(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ragged rows stored flat (row r is [indptr[r], indptr[r + 1])): each element's row and position within it."""
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    return rows, np.arange(int(indptr[-1] - indptr[0])) - (indptr[rows] - indptr[0])


def vocabulary_columns(genes, vocab: Vocabulary) -> np.ndarray:
    """The vocabulary id of each of `genes` (a file's columns), -1 for a gene outside the vocabulary."""
    return np.array([vocab.index.get(str(g), -1) for g in genes], dtype=np.int64)


def in_vocabulary_order(X: sp.csr_matrix, column_ids: np.ndarray, vocab_size: int) -> sp.csr_matrix:
    """X's vocabulary genes only, its columns re-indexed by vocabulary id (`vocabulary_columns`):
    duplicates summed, indices sorted, zeros removed."""
    known = np.flatnonzero(column_ids >= 0)
    X = X[:, known]
    X = sp.csr_matrix((X.data, column_ids[known][X.indices], X.indptr), shape=(X.shape[0], vocab_size))
    X.sum_duplicates()
    X.sort_indices()
    X.eliminate_zeros()
    return X


def tokenize(X: sp.csr_matrix, genes, vocab: Vocabulary, cfg: TokenConfig, source: str = "data") -> TokenizedCells:
    """Turn a count matrix (cells x `genes`) into per-cell (gene id, bin) tokens.

    Normalisation uses each cell's total over all its genes, before genes
    outside the vocabulary are dropped, so a cell's values do not depend on
    which vocabulary reads it.
    """
    column_ids = vocabulary_columns(genes, vocab)
    known = column_ids >= 0
    if not known.any():
        raise InputError(f"{source}: none of its {len(genes)} genes is in the model's vocabulary of {len(vocab)} genes")
    Xn = in_vocabulary_order(normalize_log2(X, cfg.target_sum), column_ids, len(vocab))
    bins = bin_values(Xn, cfg.binning, cfg.n_bins)
    indptr, gene_ids = Xn.indptr.astype(np.int64), Xn.indices.astype(np.int64)
    lengths = np.diff(indptr)
    n_truncated = int((lengths > cfg.max_len - 1).sum())
    if n_truncated:
        keep = _kept_tokens(Xn, cfg.max_len - 1, cfg.truncation)
        gene_ids, bins = gene_ids[keep], bins[keep]
        indptr = np.concatenate([[0], np.cumsum(np.minimum(lengths, cfg.max_len - 1))])
    return TokenizedCells(indptr, gene_ids, bins, n_dropped_genes=int((~known).sum()), n_truncated_cells=n_truncated)


def _kept_tokens(X: sp.csr_matrix, limit: int, truncation: str) -> np.ndarray:
    """Boolean mask of the stored values of X (rows sorted by gene id) kept when each row is cut to `limit`.

    Only the rows longer than `limit` are ranked, in the truncation's order: by gene id
    (vocabulary order), or by decreasing value with ties by gene id. Vectorised (one
    stable sort), with int64 work arrays over the long rows' values only.
    """
    lengths = np.diff(X.indptr)
    long_rows = np.flatnonzero(lengths > limit)
    long_lengths = lengths[long_rows]
    row_start = np.repeat(np.cumsum(long_lengths) - long_lengths, long_lengths)  # where each long row begins among them
    within = np.arange(long_lengths.sum()) - row_start  # position within its row = vocabulary order
    positions = np.repeat(X.indptr[long_rows], long_lengths) + within  # the long rows' values in X.data
    if truncation == "top_expressed":
        row = np.repeat(np.arange(len(long_rows)), long_lengths)
        # by row, then by decreasing value; lexsort is stable, so ties stay in vocabulary order
        order = np.lexsort((-X.data[positions], row))
        within = np.empty_like(within)
        within[order] = np.arange(len(order)) - row_start
    keep = np.ones(X.nnz, dtype=bool)
    keep[positions[within >= limit]] = False
    return keep


# Padded lengths are rounded up to one of 16 steps per doubling (1,500 tokens pad to a multiple of 64), so that
# forward passes come in a few recurring shapes whose freed tensors the allocator (glibc's, CUDA's caching one)
# reuses. With every length its own shape each batch needed blocks a little larger than any freed one, and
# `celllm embed`'s heap grew with the number of cells (2.1 GB after 24k paper-shaped cells, a dim-16 model,
# glibc's default allocator; 1.2 GB bucketed). About 3% more padding.
STEPS_PER_DOUBLING = 16


def padded_length(tokens: int) -> int:
    """`tokens` rounded up to the next of STEPS_PER_DOUBLING steps per power of two (at least a multiple of 8)."""
    step = max(8, (1 << (max(tokens, 1).bit_length() - 1)) // STEPS_PER_DOUBLING)
    return -(-tokens // step) * step


def pad_ragged(
    indptr: np.ndarray,
    gene_ids: np.ndarray,
    bins: np.ndarray,
    vocab_size: int,
    cfg: TokenConfig,
    extra: dict[str, tuple[np.ndarray, int]] | None = None,
    length: int = 0,
) -> dict[str, torch.Tensor]:
    """[CLS] + each row's tokens (rows stored flat, see `ragged_rows`), padded to the longest row (or to `length`, if longer).

    Returns `gene_ids` and `bins` (rows, length) int64 tensors and a boolean
    `mask` that is True on real tokens ([CLS] included); `extra` pads more
    per-token int64 arrays the same way (name -> (values, value at [CLS] and padding)).
    Vectorised in numpy: one scatter per array.
    """
    rows, within = ragged_rows(indptr)
    columns = within + 1
    shape = (len(indptr) - 1, max(length, 1 + int(np.diff(indptr).max(initial=0))))
    arrays = {  # values, pad, [CLS]
        "gene_ids": (gene_ids, pad_gene_id(vocab_size), cls_gene_id(vocab_size)),
        "bins": (bins, cfg.pad_bin, cfg.cls_bin),
    }
    arrays.update({name: (values, pad, pad) for name, (values, pad) in (extra or {}).items()})
    padded = {}
    for name, (values, pad, first) in arrays.items():
        out = np.full(shape, pad, dtype=np.int64)
        out[:, 0] = first
        out[rows, columns] = values
        padded[name] = torch.from_numpy(out)
    mask = np.zeros(shape, dtype=bool)
    mask[:, 0] = True
    mask[rows, columns] = True
    padded["mask"] = torch.from_numpy(mask)
    return padded


def pad_batch(sequences: list[tuple[np.ndarray, np.ndarray]], vocab_size: int, cfg: TokenConfig) -> dict[str, torch.Tensor]:
    """`pad_ragged` for a list of (gene ids, bins) sequences."""
    indptr = np.concatenate([[0], np.cumsum([len(g) for g, _ in sequences])])
    genes = np.concatenate([np.asarray(g, dtype=np.int64) for g, _ in sequences])
    bins = np.concatenate([np.asarray(b, dtype=np.int64) for _, b in sequences])
    return pad_ragged(indptr, genes, bins, vocab_size, cfg)
