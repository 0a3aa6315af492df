"""CCLE (Cancer Cell Line Encyclopedia): drug response of Barretina et al. 2012, DepMap expression.

Files, and where each fact about them comes from:

- Drug response: ``CCLE_NP24.2009_Drug_data_2015.02.24.csv`` at
  ``https://data.broadinstitute.org/ccle_legacy_data/pharmacological_profiling/CCLE_NP24.2009_Drug_data_2015.02.24.csv``
  (the CCLE legacy-data address used by bmeg-etl's dvc recipe, the
  ExperimentHub CCLE_DRUG_BROAD docs and other public code). Comma-separated,
  one row per (cell line, compound), columns (as listed by bmeg-etl's
  ``transform/ccle/ccle_drug_response.py``): ``CCLE Cell Line Name``,
  ``Primary Cell Line Name``, ``Compound``, ``Target``, ``Doses (uM)``,
  ``Activity Data (median)``, ``Activity SD`` (those three are quoted,
  comma-separated lists of the 8 doses), ``Num Data``, ``FitType``,
  ``EC50 (uM)``, ``IC50 (uM)``, ``Amax``, ``ActArea``. 24 compounds x 504 cell
  lines, 11,670 measured pairs, every one with an IC50 (counts from a public
  data README: "IC50 / EC50 observed 11670 / 7626").
  The IC50 is in µM and capped at 8 µM, the top concentration tested: a line
  that never reaches 50% inhibition is reported as 8 (Barretina et al. 2012;
  restated in the ccle_transIC50 docs of a CRAN/Bioconductor data package:
  "IC50 ... or the capped max concentration of 8 micro Mol").
- Expression: DepMap's RNA-seq, log2(TPM + 1) of protein-coding genes, with
  ``Model.csv`` (one row per model: ``ModelID`` = ACH-xxxxxx, ``CCLEName`` =
  e.g. ``HELA_CERVIX``, ``CellLineName``, ``COSMICID``, ...; header as in the
  InterMine DepMap loader and a DepMap test fixture found by code search). DepMap
  files are served per release from figshare (the portal's download API sits
  behind a bot check; e.g. DepMap Public 24Q4 = figshare+ article 27993248,
  doi 10.25452/figshare.plus.27993248; pin the file URL and its checksum in
  config/datasets.tsv). Two layouts exist:
  * up to 24Q2 (at least): ``OmicsExpressionProteinCodingGenesTPMLogp1.csv``,
    one row per model, the first column unnamed holding the ModelID, then one
    column per gene named ``SYMBOL (ENTREZ)``;
  * 25Q2/25Q3/26Q1: ``OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv``,
    one row per sequencing, an unnamed row-number column, then ``SequencingID,
    ModelID, IsDefaultEntryForModel, ModelConditionID, IsDefaultEntryForMC``
    ("Yes"/"No") before the gene columns (order as seen by a public reader of
    the 25Q-file; the metadata set as listed by several readers). Only the
    rows with ``IsDefaultEntryForModel == "Yes"`` are kept: one per model.
  Both are read (the layout is detected from the header).

Keys and rules:

- Cell line key: the CCLE name (``HELA_CERVIX``, upper-case, the cell line name
  stripped of punctuation, "_", the tissue). It is the only identifier of the
  2012 drug file; DepMap models are mapped to it through ``Model.csv``
  (ModelID -> CCLEName). Models without a CCLEName (newer lines, organoids) are
  dropped with a logged count; a CCLE name given to two models keeps the first.
  Response names are upper-cased and stripped, as are CCLE names.
- Drug key: ``Compound`` (e.g. 'AZD6244', 'PD-0325901'), matched to the SMILES
  table by `smiles.drug_key`.
- ln IC50 = natural log of ``IC50 (uM)`` (µM, the unit of GDSC's LN_IC50).
  Capped values (IC50 >= 8 µM) are kept at ln 8 = 2.079 by default
  (``capped="keep"``: they are right-censored, the line is resistant at the
  tested range) or dropped with ``capped="drop"``; the count is logged.
- Duplicated (cell line, compound) rows (none in the 2015 file): the mean of
  their ln IC50, logged.

Expression values: log2(TPM + 1), non-negative, unchanged;
``uns['value_scale'] = uns['count_scale'] = 'log2_tpm_plus_1'``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from ingest.sources._common import describe_real, expression_block, read_text_csv
from ingest.sources.smiles import attach_smiles

log = logging.getLogger(__name__)

DRUG_DATA_URL = "https://data.broadinstitute.org/ccle_legacy_data/pharmacological_profiling/CCLE_NP24.2009_Drug_data_2015.02.24.csv"
DEPMAP_24Q4_ARTICLE = "https://doi.org/10.25452/figshare.plus.27993248"
IC50_CAP_UM = 8.0
CELL_LINE_COLUMN = "CCLE Cell Line Name"
COMPOUND_COLUMN = "Compound"
IC50_COLUMN = "IC50 (uM)"
MODEL_COLUMNS = ["ModelID", "CCLEName"]
METADATA_COLUMNS = {"SequencingID", "ModelID", "IsDefaultEntryForModel", "ModelConditionID", "IsDefaultEntryForMC", "ProfileID"}
GENE_COLUMN = re.compile(r"^(?P<symbol>.+?)\s+\((?P<entrez>\d+)\)$")
MODEL_ID = re.compile(r"^ACH-\d+$")
VALUE_SCALE = "log2_tpm_plus_1"


def parse_ccle_expression(expression_path: str | os.PathLike, models_path: str | os.PathLike) -> ad.AnnData:
    """Cell lines x genes from a DepMap log2(TPM+1) expression CSV and ``Model.csv``.

    obs_names and ``obs['cell_line']``: the CCLE name; ``obs['model_id']``: the
    DepMap ModelID; ``obs['tissue'] = 'tumor'``. var_names: gene symbols (the
    "SYMBOL" of "SYMBOL (ENTREZ)"), ``var['entrez_id']`` the Entrez id (-1 when the
    column has none); a symbol on several columns is their mean (logged).

    Raises InputError naming the file for a missing file, a header that is neither
    DepMap layout, a Model.csv without ModelID/CCLEName, missing/non-numeric/negative
    values, and no model left with a CCLE name.
    """
    expression_path, models_path = Path(expression_path), Path(models_path)
    for path, what in ((expression_path, "DepMap expression file"), (models_path, "DepMap Model.csv")):
        if not path.exists():
            raise InputError(f"{path}: {what} not found")
    names = _model_names(models_path)
    try:
        table = pd.read_csv(expression_path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{expression_path}: not a readable CSV ({exc.__class__.__name__})") from None
    columns = [str(c) for c in table.columns]
    if "ModelID" in columns:  # 25Q2+ layout: one row per sequencing, metadata columns first
        model_ids = table["ModelID"].astype(str).str.strip()
        if "IsDefaultEntryForModel" in columns:
            default = table["IsDefaultEntryForModel"].astype(str).str.strip().str.casefold().isin(["yes", "true", "1"])
            log.info("%s: %d of %d profiles are the default entry of their model", expression_path, int(default.sum()), len(table))
            table, model_ids = table[default], model_ids[default]
        skip = {c for c in columns if c in METADATA_COLUMNS or c == "" or c.startswith("Unnamed:")}
    else:  # up to 24Q2: the first, unnamed column is the ModelID
        first = columns[0]
        model_ids = table[first].astype(str).str.strip()
        if not first.startswith("Unnamed:") and first != "" and not model_ids.str.match(MODEL_ID.pattern).all():
            raise InputError(f"{expression_path}: neither a ModelID column nor DepMap ids (ACH-...) in the first column; expected a DepMap OmicsExpression...TPMLogp1 CSV")
        skip = {first}
    if table.empty:
        raise InputError(f"{expression_path}: no expression profiles")
    bad_ids = ~model_ids.str.match(MODEL_ID.pattern)
    if bad_ids.any():
        raise InputError(f"{expression_path}: {int(bad_ids.sum())} rows have no DepMap ModelID (first: {model_ids[bad_ids].iloc[0]!r})")
    gene_columns = [c for c in columns if c not in skip]
    if not gene_columns:
        raise InputError(f"{expression_path}: no gene columns")
    symbols, entrez = [], []
    for column in gene_columns:
        match = GENE_COLUMN.match(column)
        symbols.append(match.group("symbol").strip() if match else column.strip())
        entrez.append(int(match.group("entrez")) if match else -1)
    if not any(e >= 0 for e in entrez):
        raise InputError(f"{expression_path}: no gene column of the form 'SYMBOL (ENTREZ)' (first columns: {', '.join(gene_columns[:3])})")
    values = expression_block(table[gene_columns], expression_path, lambda row, column: f"{model_ids.iloc[row]}, {gene_columns[column]}",
                              "expected log2(TPM + 1)")

    ccle = model_ids.map(names)
    named = ccle.notna().to_numpy()
    if not named.any():
        raise InputError(f"{expression_path}: none of its {len(model_ids)} models has a CCLEName in {models_path}")
    if (~named).any():
        log.info("%s: %d models without a CCLE name dropped", expression_path, int((~named).sum()))
    ccle, model_ids, values = ccle[named], model_ids[named], values[named]
    first = ~ccle.duplicated().to_numpy()
    if not first.all():
        log.warning("%s: %d profiles share a CCLE name with an earlier one; the first is kept", expression_path, int((~first).sum()))
        ccle, model_ids, values = ccle[first], model_ids[first], values[first]

    genes, inverse = np.unique(np.asarray(symbols, dtype=object).astype(str), return_inverse=True)
    if len(genes) < len(symbols):
        log.info("%s: %d gene columns share a symbol with another; their values are averaged", expression_path, len(symbols) - len(genes))
        merge = sp.csr_matrix((np.ones(len(inverse)), (np.arange(len(inverse)), inverse)), shape=(len(inverse), len(genes)))
        merge = merge @ sp.diags(1.0 / np.asarray(merge.sum(axis=0)).ravel())
        values = values @ merge
        entrez_by_gene = pd.Series(entrez).groupby(inverse).first().to_numpy()
    else:
        order = np.argsort(inverse)
        values, entrez_by_gene = values[:, order], np.asarray(entrez)[order]
    keys = ccle.astype(str).tolist()
    obs = pd.DataFrame({"cell_line": keys, "model_id": model_ids.tolist(), "tissue": pd.Categorical(["tumor"] * len(keys), categories=["normal", "tumor"])},
                       index=pd.Index(keys, dtype=object))
    var = pd.DataFrame({"entrez_id": np.asarray(entrez_by_gene, dtype=np.int64)}, index=pd.Index(genes.astype(str), dtype=object))
    adata = ad.AnnData(X=sp.csr_matrix(np.asarray(values), dtype=np.float32), obs=obs, var=var)
    describe_real(adata, "ccle", VALUE_SCALE, VALUE_SCALE,
        cell_line_key="CCLE name",
        source=f"DepMap {expression_path.name} + {models_path.name}; log2(TPM + 1) of protein-coding genes, unchanged",
    )
    return adata


def parse_ccle_response(drug_data_path: str | os.PathLike, smiles: pd.DataFrame, capped: str = "keep") -> pd.DataFrame:
    """``CCLE_NP24.2009_Drug_data_2015.02.24.csv`` as the response table (cell_line, drug, smiles, ln_ic50).

    cell_line: the CCLE name (upper-cased); drug: the Compound; ln_ic50 = ln(IC50 in µM).
    `capped`: "keep" (default) keeps IC50 values at the 8 µM cap as ln 8, "drop"
    removes them. Drugs without SMILES are dropped with a logged count. Sorted by
    cell line, drug.

    Raises InputError naming the file for a missing file, a missing column, a row
    without cell line or compound, a missing/non-numeric/non-positive IC50, and no
    rows (none at all, or none left).
    """
    if capped not in ("keep", "drop"):
        raise InputError(f"capped must be 'keep' or 'drop', not {capped!r}")
    path = Path(drug_data_path)
    table = read_text_csv(path, "CCLE drug data file")
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in (CELL_LINE_COLUMN, COMPOUND_COLUMN, IC50_COLUMN) if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} (has: {', '.join(table.columns[:13]) or 'none'}); expected CCLE_NP24.2009_Drug_data")
    if table.empty:
        raise InputError(f"{path}: no drug-response rows")
    cell_line = table[CELL_LINE_COLUMN].str.strip().str.upper()
    drug = table[COMPOUND_COLUMN].str.strip()
    if (cell_line == "").any() or (drug == "").any():
        raise InputError(f"{path}: {int(((cell_line == '') | (drug == '')).sum())} rows have no cell line name or compound")
    ic50 = pd.to_numeric(table[IC50_COLUMN].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(ic50) | (np.nan_to_num(ic50, nan=0.0) <= 0)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} rows have a missing, non-numeric or non-positive '{IC50_COLUMN}' (first: {table[IC50_COLUMN][bad].iloc[0]!r})")
    at_cap = ic50 >= IC50_CAP_UM - 1e-9
    pairs = pd.DataFrame({"cell_line": cell_line.to_numpy(), "drug": drug.to_numpy(), "ln_ic50": np.log(ic50)})
    if capped == "drop":
        log.info("%s: %d of %d pairs at the %g µM cap dropped", path, int(at_cap.sum()), len(pairs), IC50_CAP_UM)
        pairs = pairs[~at_cap]
        if pairs.empty:
            raise InputError(f"{path}: every IC50 is at the {IC50_CAP_UM:g} µM cap; nothing left with capped='drop'")
    else:
        log.info("%s: %d of %d pairs at the %g µM cap kept as ln %g", path, int(at_cap.sum()), len(pairs), IC50_CAP_UM, IC50_CAP_UM)
    merged = pairs.groupby(["cell_line", "drug"], as_index=False, sort=False)["ln_ic50"].mean()
    if len(merged) < len(pairs):
        log.warning("%s: %d repeated (cell line, compound) rows averaged", path, len(pairs) - len(merged))
    merged = attach_smiles(merged, smiles, str(path))
    return merged[["cell_line", "drug", "smiles", "ln_ic50"]].sort_values(["cell_line", "drug"]).reset_index(drop=True)


def _model_names(path: Path) -> pd.Series:
    """ModelID -> CCLE name (upper-cased), from DepMap's Model.csv; models without one are left out."""
    try:
        models = pd.read_csv(path, dtype=str, keep_default_na=False, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    missing = [c for c in MODEL_COLUMNS if c not in models.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, models.columns[:10])) or 'none'}); expected DepMap's Model.csv")
    models = models[MODEL_COLUMNS].apply(lambda s: s.str.strip())
    models = models[(models["ModelID"] != "") & (models["CCLEName"] != "")]
    if models.empty:
        raise InputError(f"{path}: no model has a CCLEName")
    return models.drop_duplicates("ModelID").set_index("ModelID")["CCLEName"].str.upper()
