"""What a model sees of a dataset: the rows of one split.

`CellData`: single cells and their labels (classification tasks).
`PairData`: (cell line, drug) pairs with ln IC50, the cell lines' expression
and every drug's features (drug response).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.preprocess import log_normalize

log = logging.getLogger(__name__)


@dataclass
class CellData:
    adata: ad.AnnData  # counts (standard contract), the cells of one split
    labels: np.ndarray  # one label per cell

    def __len__(self) -> int:
        return self.adata.n_obs

    @cached_property
    def log_normalized(self) -> sp.csr_matrix:
        """normalize_total to 1e4 then log1p: the usual input of linear baselines."""
        return log_normalize(self.adata.X)


@dataclass
class PairData:
    pairs: pd.DataFrame  # cell_line, drug, smiles, ln_ic50: the pairs of one split
    cell_lines: ad.AnnData  # expression of exactly the cell lines in `pairs`, obs_names = cell line
    drugs: DrugFeatures  # every drug of the dataset (structure only, no response)  # noqa: F821

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def values(self) -> np.ndarray:
        return self.pairs["ln_ic50"].to_numpy(dtype=np.float64)

    @cached_property
    def cell_index(self) -> np.ndarray:
        """Row of `cell_lines` for each pair."""
        return self.cell_lines.obs_names.get_indexer(self.pairs["cell_line"].astype(str))

    @cached_property
    def drug_index(self) -> np.ndarray:
        """Row of `drugs` for each pair."""
        return self.drugs.index(self.pairs["drug"].astype(str))

    @cached_property
    def log_normalized(self) -> np.ndarray:
        """Log-normalised expression of each cell line (dense; bulk profiles are not sparse)."""
        return np.asarray(log_normalize(self.cell_lines.X).todense(), dtype=np.float32)


RESPONSE_COLUMNS = ["cell_line", "drug", "smiles", "ln_ic50"]


def read_response_table(path, cell_lines: ad.AnnData | None = None) -> pd.DataFrame:
    """A drug-response table (cell_line, drug, smiles, ln_ic50), validated.

    Pairs whose cell line has no expression profile in `cell_lines` are
    dropped with a warning (real screens include lines that were never
    sequenced); everything else that is wrong is an error naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: drug-response table not found")
    try:
        table = pd.read_csv(path, sep="\t", dtype={"cell_line": str, "drug": str, "smiles": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable tab-separated table ({exc.__class__.__name__})") from None
    missing = [c for c in RESPONSE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(RESPONSE_COLUMNS)})")
    table = table[RESPONSE_COLUMNS]
    if table.empty:
        raise InputError(f"{path}: no drug-response pairs")
    values = pd.to_numeric(table["ln_ic50"], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))  # NaN too: unparsable text became NaN above
    if bad.any():
        raise InputError(f"{path}: ln_ic50 values are missing or not finite in {int(bad.sum())} rows")
    table = table.assign(ln_ic50=values.astype(float))
    if table[["cell_line", "drug"]].isna().any().any():
        raise InputError(f"{path}: empty cell_line or drug names")
    duplicated = table.duplicated(["cell_line", "drug"])
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise InputError(f"{path}: {int(duplicated.sum())} duplicated (cell_line, drug) pairs, e.g. ({first.cell_line}, {first.drug})")
    if cell_lines is not None:
        known = table["cell_line"].isin(cell_lines.obs_names)
        if not known.any():
            raise InputError(f"{path}: no cell line of the table has an expression profile")
        if not known.all():
            log.warning(
                "%s: %d pairs of %d cell lines without expression were dropped",
                path,
                int((~known).sum()),
                table.loc[~known, "cell_line"].nunique(),
            )
            table = table[known]
    return table.reset_index(drop=True)


def pair_ids(pairs: pd.DataFrame) -> np.ndarray:
    """One id per pair, as written in split files."""
    return (pairs["cell_line"].astype(str) + "::" + pairs["drug"].astype(str)).to_numpy()
