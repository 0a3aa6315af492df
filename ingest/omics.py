"""Cell-line mutation and copy-number profiles over TGSA's genes, beside a drug-response dataset's expression.

TGSA's drug-response model TGDRP represents a cell line by expression, copy number and mutation of
706 Cancer Gene Census genes (`ingest.sources.tgsa`). The DepMap-based datasets keep those profiles
in ``.obsm`` (the contract of `attach_omics`), from DepMap's damaging-mutation and gene copy-number
matrices (`ingest.sources.depmap`), every gene and cell line the join misses counted in the ledger
(step ``cell_line_omics``).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ingest.ledger import Ledger

OMICS = ("mutation", "copy_number")  # the .obsm keys


def attach_omics(
    adata: ad.AnnData, mutation: pd.DataFrame, copy_number: pd.DataFrame, genes: pd.Series, unnamed: list[int], ledger: Ledger
) -> ad.AnnData:
    """`adata` with ``.obsm['mutation']`` and ``.obsm['copy_number']``.

    Contract: pandas DataFrames indexed exactly like ``adata.obs_names``, float32, whose columns are
    the symbols of TGSA's genes found in both matrices, in TGSA's order, the same in both. Mutation:
    1 where DepMap calls a damaging mutation (its 2, summed allele frequency above 0.95, binarised to
    1), else 0. Copy number: as DepMap gives it. A cell line a matrix has no row for gets a NaN row
    there (it stays: expression-only models use it). `genes`: TGSA's Entrez id -> HGNC symbol;
    `unnamed`: TGSA's ids HGNC has no symbol for. Ledger rows (step cell_line_omics): genes, cell
    lines without both profiles, and the mutation calls binarised.
    """
    found = [s for s in genes if s in mutation.columns and s in copy_number.columns]
    _record_genes(genes, unnamed, mutation, copy_number, found, ledger)
    lines = adata.obs_names
    mutated = mutation.reindex(index=lines, columns=found)
    calls, binary = _binarised(mutated)
    _record_lines(lines, mutation.index, copy_number.index, ledger)
    ledger.record(
        "cell_line_omics",
        "mutation_calls",
        calls,
        calls,
        "damaging mutations of these lines over these genes; DepMap's 2 (allele frequencies summed above 0.95) binarised to 1",
        changed=int((mutated.to_numpy() > 1).sum()),
    )
    out = adata.copy()
    out.obsm["mutation"] = binary
    out.obsm["copy_number"] = copy_number.reindex(index=lines, columns=found).astype(np.float32)
    entrez = {symbol: e for e, symbol in genes.items()}
    out.uns["cell_line_omics"] = {
        "entrez_id": np.asarray([entrez[s] for s in found], dtype=np.int64),
        "mutation": "1 = at least one damaging mutation (DepMap's LikelyLoF), 0 = none, NaN = no profile",
        "copy_number": "DepMap's gene-level copy number as given, NaN = no profile",
    }
    return out


def _binarised(mutation: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """(the number of calls, `mutation` as float32 1/0, NaN kept)."""
    values = mutation.to_numpy(dtype=np.float32)
    binary = np.where(np.isnan(values), np.nan, (values > 0).astype(np.float32)).astype(np.float32)
    return int((values > 0).sum()), pd.DataFrame(binary, index=mutation.index, columns=mutation.columns)


def _record_genes(
    genes: pd.Series, unnamed: list[int], mutation: pd.DataFrame, copy_number: pd.DataFrame, found: list[str], ledger: Ledger
) -> None:
    lost = [f"{e} (no HGNC symbol)" for e in unnamed]
    for entrez, symbol in genes.items():
        absent = [name for name, frame in (("mutations", mutation), ("copy number", copy_number)) if symbol not in frame.columns]
        if absent:
            lost.append(f"{symbol} ({entrez}; not in the {' or '.join(absent)} matrix)")
    ledger.record(
        "cell_line_omics",
        "genes",
        len(genes) + len(unnamed),
        len(found),
        "TGSA's genes (by Entrez id) in DepMap's mutation and copy-number matrices, named by today's HGNC symbol",
        lost,
        expected=True,
    )


def _record_lines(lines: pd.Index, with_mutations: pd.Index, with_copy_number: pd.Index, ledger: Ledger) -> None:
    lost = []
    for line in lines:
        absent = [name for name, index in (("mutations", with_mutations), ("copy number", with_copy_number)) if line not in index]
        if absent:
            lost.append(f"{line} (no {' or '.join(absent)})")
    ledger.record(
        "cell_line_omics",
        "cell_lines",
        len(lines),
        len(lines) - len(lost),
        "cell lines without a mutation or copy-number profile: kept, with a NaN row there (expression-only models use them)",
        lost,
        expected=True,
    )
