"""Is an evaluation dataset's cell in the pretraining corpus? Exact duplicates, counted.

The paper pretrains on PanglaoDB and CancerSCEM and evaluates on Zheng68k, Baron and
the drug-sensitivity sets; a public atlas may hold the very cells a benchmark scores.
The token store keeps a fingerprint of every corpus cell's counts
(`celllm.pretrain.store.cell_fingerprints`: the cell's counts over the vocabulary's
genes, in vocabulary order), and each evaluation dataset is fingerprinted the same way
against the store's vocabulary, a block of cells at a time. A cell whose fingerprint is
in the corpus is a duplicate: the same counts of the same genes. Cells expressing no
vocabulary gene are never counted. Re-processed copies of a cell (another aligner,
another gene annotation) are not exact duplicates and are not found here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from celllm.io import DatasetBlocks
from celllm.pretrain.store import BLOCK_CELLS, TokenStore, cell_fingerprints

COLUMNS = ("dataset", "n_cells", "n_in_corpus", "share_in_corpus", "first_duplicates")


def corpus_fingerprints(store: TokenStore) -> np.ndarray:
    """The sorted distinct fingerprints of the store's cells (0, a cell without vocabulary genes, left out)."""
    values = np.unique(np.asarray(store.cell_hash))
    return values[values != 0]


def duplicates_of(dataset_path, store: TokenStore, known: np.ndarray | None = None) -> dict:
    """How many cells of the .h5ad `dataset_path` are exact duplicates of corpus cells, and the first few ids."""
    known = corpus_fingerprints(store) if known is None else known
    n_cells, found, first = 0, 0, []
    with DatasetBlocks(dataset_path, scale_check=False) as dataset:
        names = np.asarray(dataset.obs.index).astype(str)
        for start, X in dataset.blocks(BLOCK_CELLS):
            prints = cell_fingerprints(X, dataset.var_names, store.vocab)
            hit = (prints != 0) & np.isin(prints, known)
            found += int(hit.sum())
            first += list(names[start : start + len(prints)][hit][: 5 - len(first)])
            n_cells += len(prints)
    return {
        "dataset": Path(dataset_path).stem,
        "n_cells": n_cells,
        "n_in_corpus": found,
        "share_in_corpus": found / n_cells if n_cells else 0.0,
        "first_duplicates": " ".join(first),
    }


def to_markdown(table: pd.DataFrame, n_corpus: int) -> str:
    lines = [
        f"Evaluation cells that are exact duplicates of pretraining cells (the same counts of the same "
        f"vocabulary genes; {n_corpus:,} distinct corpus cells).",
        "",
        "| dataset | cells | in the corpus | share | first duplicates |",
        "|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.dataset} | {row.n_cells:,} | {row.n_in_corpus:,} | {row.share_in_corpus:.2%} | {row.first_duplicates or '–'} |"
        )
    return "\n".join(lines) + "\n"


def write_contamination(store_path, dataset_paths, out_csv, out_md) -> pd.DataFrame:
    """The contamination table of the store's corpus against the .h5ad files `dataset_paths`, as .csv and .md."""
    from celllm.outputs import atomic_path

    store = TokenStore.open(store_path)
    known = corpus_fingerprints(store)
    table = pd.DataFrame([duplicates_of(path, store, known) for path in dataset_paths], columns=list(COLUMNS))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(to_markdown(table, len(known)))
    return table
