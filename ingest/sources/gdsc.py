"""GDSC (Genomics of Drug Sensitivity in Cancer, Wellcome Sanger Institute).

Files, and where each fact about them comes from:

- Fitted dose response, one file per screen (GDSC1, GDSC2), release 8.5:
  ``https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC1_fitted_dose_response_27Oct23.xlsx``
  and ``.../GDSC2_fitted_dose_response_27Oct23.xlsx`` (the bulk-download page
  https://www.cancerrxgene.org/downloads/bulk_download links them; the URLs as used
  by many public pipelines found by code search, e.g. a targets pipeline reading
  both files and a README in vanallenlab/moalmanac-paper for the 25Feb20 release).
  Several public scripts download a ``.csv`` twin at the same address
  (``GDSC2_fitted_dose_response_27Oct23.csv``); both are read here. Columns (the
  same in every release since 8.0; the column list documented in
  PeeteKeesel/gnn-for-drug-response-prediction knowledge_base/table_contents.md and
  seen in a head() of GDSC2_fitted_dose_response_17Jul19): DATASET, NLME_RESULT_ID,
  NLME_CURVE_ID, COSMIC_ID, CELL_LINE_NAME, SANGER_MODEL_ID, TCGA_DESC, DRUG_ID,
  DRUG_NAME, PUTATIVE_TARGET, PATHWAY_NAME, COMPANY_ID, WEBRELEASE, MIN_CONC,
  MAX_CONC, LN_IC50, AUC, RMSE, Z_SCORE. ``LN_IC50`` is the natural log of the
  fitted IC50 in micromolar ("to convert to micromolar take the exponent", GDSC's
  data description as quoted there). The xlsx files have one sheet; its name is
  not documented anywhere we could find, so the first sheet is read.
- Basal expression: ``Cell_line_RMA_proc_basalExp.txt`` inside
  ``https://www.cancerrxgene.org/gdsc1000/GDSC1000_WebResources/Data/preprocessed/Cell_line_RMA_proc_basalExp.txt.zip``
  (GDSC1000 web resources, "RMA normalised expression data for cell-lines";
  URL as in TangYiChing/GDSC_DataParser, pRRophetic's data docs and others).
  Tab-separated; columns ``GENE_SYMBOLS``, ``GENE_title``, then one
  ``DATA.<COSMIC_ID>`` column per cell line; one row per Affymetrix HG-U219 probe
  set summarised to genes, 17,737 rows x 1,020 columns of which a few hundred
  rows have an empty symbol (counts reported by public R readers of the file,
  e.g. "dim(rma) # 17737 1020", 17,419 rows with a symbol). Values are RMA,
  i.e. log2-scale intensities, all positive. The zip can be read as it is.
- Drug annotation with PubChem ids: the compounds page
  (https://www.cancerrxgene.org/compounds, "download") gives
  ``Drug_list<timestamp>.csv`` with columns ``drug_id, Name, Synonyms, Targets,
  Target pathway, PubCHEM, ...`` (the later columns changed over time: "Sample
  Size, Count" in 2019/2021 downloads, "Datasets, number of cell lines,
  Screening site" later). ``PubCHEM`` holds one CID, several CIDs separated by
  commas, "several", or "none"/"None" (an R reader of "Drug_listThu Jun 8 2023"
  counts 240 of 700 drugs without a usable CID; DeepCDR keeps only numeric
  entries). The bulk-download ``screened_compounds_rel_8.5.csv`` (DRUG_ID,
  SCREENING_SITE, DRUG_NAME, SYNONYMS, TARGET, TARGET_PATHWAY) has no PubChem
  column, so it cannot give structures.

Keys and rules:

- Cell line key: the COSMIC id, written as a decimal string ('906826'): it is
  the only identifier the expression file has, and it is stable across releases,
  while names differ in punctuation between files. `parse_gdsc_expression`
  uses it for obs_names and ``obs['cell_line']``; `parse_gdsc_response` for the
  ``cell_line`` column, so the two match. The readable name goes to
  ``obs['cell_line_name']`` when a dose-response file is given to look it up.
- Drug key: ``DRUG_NAME``. The same compound has different DRUG_IDs in GDSC1 and
  GDSC2 (and sometimes two ids in one screen, from two suppliers), and a
  structure belongs to the compound, not to the id.
- Duplicated (cell line, drug) pairs: with ``prefer_dataset="GDSC2"`` (default)
  a pair measured in GDSC2 keeps only its GDSC2 rows (the newer screen, with the
  improved assay); the rows left for a pair are then averaged (the mean of
  ln IC50, i.e. the geometric mean IC50). ``prefer_dataset=None`` averages all.
- Drugs without a SMILES are dropped with a logged count (`attach_smiles`).

Expression values: RMA values are already log2 and positive, so they satisfy
the contract's non-negative rule; they are kept unchanged and recorded as
``uns['value_scale'] = uns['count_scale'] = 'rma_log2'``. They are not counts:
a consumer that normalises counts should read that key first.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from ingest.sources._common import describe_real, expression_block, read_text_csv
from ingest.sources.smiles import attach_smiles

log = logging.getLogger(__name__)

RELEASE = "8.5"
RESPONSE_URLS = {
    "GDSC1": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC1_fitted_dose_response_27Oct23.xlsx",
    "GDSC2": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC2_fitted_dose_response_27Oct23.xlsx",
}
EXPRESSION_URL = "https://www.cancerrxgene.org/gdsc1000/GDSC1000_WebResources/Data/preprocessed/Cell_line_RMA_proc_basalExp.txt.zip"
COMPOUNDS_PAGE = "https://www.cancerrxgene.org/compounds"

RESPONSE_REQUIRED = ["COSMIC_ID", "DRUG_NAME", "LN_IC50"]
EXPRESSION_GENE = "GENE_SYMBOLS"
EXPRESSION_TITLE = "GENE_title"
DATA_COLUMN = re.compile(r"^DATA\.(\d+)$")
VALUE_SCALE = "rma_log2"


def parse_gdsc_expression(path: str | os.PathLike, names: Mapping | pd.DataFrame | str | os.PathLike | Iterable | None = None) -> ad.AnnData:
    """Cell lines x genes from ``Cell_line_RMA_proc_basalExp.txt`` (or its .zip).

    obs_names and ``obs['cell_line']``: the COSMIC id as a string; ``obs['cosmic_id']``:
    the same as an integer; ``obs['tissue'] = 'tumor'``. With `names` (a mapping
    COSMIC id -> name, a DataFrame with COSMIC_ID and CELL_LINE_NAME, or the path(s) of
    fitted dose-response files) also ``obs['cell_line_name']`` (empty where unknown).
    var_names: the gene symbols; rows without a symbol are dropped, and a symbol on
    several rows is the mean of those rows (both logged). `.X` float32 CSR of the
    RMA log2 values, unchanged.

    Raises InputError naming the file for a missing file, a header without
    GENE_SYMBOLS or without DATA.<COSMIC_ID> columns, a malformed DATA column,
    missing or non-numeric or negative values, and a file without genes.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: GDSC expression file not found")
    try:
        header = pd.read_csv(path, sep="\t", header=None, nrows=1, dtype=str).iloc[0].tolist()
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable tab-separated file ({exc.__class__.__name__})") from None
    header = [str(h).strip() for h in header]
    if EXPRESSION_GENE not in header:
        raise InputError(f"{path}: missing column {EXPRESSION_GENE} (header starts {', '.join(header[:4])}); expected GDSC's Cell_line_RMA_proc_basalExp.txt")
    data_positions, cosmic = [], []
    for position, name in enumerate(header):
        if name in (EXPRESSION_GENE, EXPRESSION_TITLE):
            continue
        match = DATA_COLUMN.match(name)
        if match is None:
            raise InputError(f"{path}: column '{name}' is neither {EXPRESSION_GENE}, {EXPRESSION_TITLE} nor DATA.<COSMIC_ID>")
        data_positions.append(position)
        cosmic.append(int(match.group(1)))
    if not data_positions:
        raise InputError(f"{path}: no DATA.<COSMIC_ID> columns: no cell lines")
    gene_position = header.index(EXPRESSION_GENE)
    try:
        body = pd.read_csv(path, sep="\t", header=None, skiprows=1, dtype={gene_position: str}, usecols=[gene_position, *data_positions])
    except pd.errors.EmptyDataError:  # a ValueError too: caught first
        raise InputError(f"{path}: no genes (only a header)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable tab-separated file ({exc.__class__.__name__}: {exc})") from None
    if body.empty:
        raise InputError(f"{path}: no genes (only a header)")
    symbols = body[gene_position].fillna("").astype(str).str.strip()
    values = expression_block(body[data_positions], path, lambda row, column: f"gene '{symbols.iloc[row]}', DATA.{cosmic[column]}",
                              "RMA log2 values should be positive")
    named = (symbols != "").to_numpy()
    if not named.any():
        raise InputError(f"{path}: no row has a gene symbol")
    if (~named).any():
        log.info("%s: %d probe rows without a gene symbol dropped", path, int((~named).sum()))
    genes, inverse = np.unique(symbols[named].to_numpy(), return_inverse=True)
    if len(genes) < named.sum():
        log.info("%s: %d rows share a symbol with another row; their values are averaged", path, int(named.sum() - len(genes)))
    merge = sp.csr_matrix((np.ones(len(inverse)), (inverse, np.arange(len(inverse)))), shape=(len(genes), len(inverse)))
    merge = sp.diags(1.0 / np.asarray(merge.sum(axis=1)).ravel()) @ merge  # a gene is the mean of its rows
    X = (merge @ values[named]).T  # cell lines x genes

    cosmic = np.asarray(cosmic, dtype=np.int64)
    first = ~pd.Index(cosmic).duplicated()
    if not first.all():
        log.warning("%s: %d cell lines appear twice; the first column of each is kept", path, int((~first).sum()))
        X, cosmic = X[first], cosmic[first]
    keys = [str(c) for c in cosmic]
    obs = pd.DataFrame({"cell_line": keys, "cosmic_id": cosmic, "tissue": pd.Categorical(["tumor"] * len(keys), categories=["normal", "tumor"])},
                       index=pd.Index(keys, dtype=object))
    if names is not None:
        lookup = _cell_line_names(names)
        obs["cell_line_name"] = [lookup.get(int(c), "") for c in cosmic]
    adata = ad.AnnData(X=sp.csr_matrix(X, dtype=np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(genes.astype(str), dtype=object)))
    describe_real(adata, "gdsc", VALUE_SCALE, VALUE_SCALE,
        cell_line_key="COSMIC id",
        source=f"GDSC1000 Cell_line_RMA_proc_basalExp.txt ({EXPRESSION_URL}); RMA (log2) Affymetrix HG-U219 values, unchanged",
    )
    return adata


def read_gdsc_dose_response(path: str | os.PathLike) -> pd.DataFrame:
    """One fitted dose-response file (.xlsx or .csv/.tsv) as a DataFrame, its required columns checked."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: GDSC dose-response file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            try:
                import openpyxl  # noqa: F401  (pandas needs it for .xlsx; not a declared dependency)
            except ImportError:
                raise InputError(f"{path}: reading .xlsx needs the openpyxl package (pip install openpyxl), or give the .csv version") from None
            table = pd.read_excel(path, sheet_name=0)
        else:
            table = pd.read_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",", low_memory=False)
    except InputError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable dose-response table ({exc.__class__.__name__})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in RESPONSE_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.columns[:12]) or 'none'}); expected GDSC's fitted dose response")
    if table.empty:
        raise InputError(f"{path}: no dose-response rows")
    return table


def parse_gdsc_response(dose_response_path: str | os.PathLike | Iterable[str | os.PathLike], smiles: pd.DataFrame,
                        prefer_dataset: str | None = "GDSC2") -> pd.DataFrame:
    """GDSC1 and/or GDSC2 fitted dose response as the response table (cell_line, drug, smiles, ln_ic50).

    `dose_response_path`: one file or several (GDSC1 and GDSC2). `smiles`: drug, smiles
    (e.g. from `parse_pubchem_smiles`). cell_line is the COSMIC id string (the
    key of `parse_gdsc_expression`), drug the DRUG_NAME, ln_ic50 the LN_IC50 (natural
    log of IC50 in µM). Duplicates resolved as the module docstring says; drugs
    without SMILES dropped with a logged count. Rows are sorted by cell line, drug.

    Raises InputError naming the file for a missing file, an unreadable table, a
    missing column, a missing or non-numeric COSMIC id, drug name or LN_IC50, and
    for no rows (none at all, or none with a SMILES).
    """
    if prefer_dataset not in (None, "GDSC1", "GDSC2"):
        raise InputError(f"prefer_dataset must be 'GDSC1', 'GDSC2' or None, not {prefer_dataset!r}")
    paths = [dose_response_path] if isinstance(dose_response_path, (str, os.PathLike)) else list(dose_response_path)
    if not paths:
        raise InputError("GDSC dose response: no file given")
    parts = []
    for path in map(Path, paths):
        table = read_gdsc_dose_response(path)
        cosmic = pd.to_numeric(table["COSMIC_ID"], errors="coerce")
        bad = ~np.isfinite(cosmic.to_numpy(dtype=float)) | (cosmic.fillna(-1) % 1 != 0).to_numpy()
        if bad.any():
            raise InputError(f"{path}: {int(bad.sum())} rows have a missing or non-integer COSMIC_ID (first: {table['COSMIC_ID'][bad].iloc[0]!r})")
        drug = table["DRUG_NAME"]
        if drug.isna().any() or (drug.astype(str).str.strip() == "").any():
            raise InputError(f"{path}: {int((drug.isna() | (drug.astype(str).str.strip() == '')).sum())} rows have no DRUG_NAME")
        ln_ic50 = pd.to_numeric(table["LN_IC50"], errors="coerce")
        bad = ~np.isfinite(ln_ic50.to_numpy(dtype=float))
        if bad.any():
            raise InputError(f"{path}: {int(bad.sum())} rows have a missing or non-numeric LN_IC50")
        if "DATASET" in table.columns:
            dataset = table["DATASET"].fillna("").astype(str).str.strip().str.upper()
        else:  # not in any release we saw; fall back on the file name
            guess = re.search(r"GDSC[12]", path.name.upper())
            dataset = pd.Series(guess.group(0) if guess else "", index=table.index)
        parts.append(pd.DataFrame({
            "cell_line": cosmic.astype(np.int64).astype(str).to_numpy(),
            "drug": drug.astype(str).str.strip().to_numpy(),
            "ln_ic50": ln_ic50.astype(float).to_numpy(),
            "dataset": dataset.to_numpy(),
        }))
    pairs = pd.concat(parts, ignore_index=True)
    source = ", ".join(map(str, paths))
    pairs = _resolve_duplicates(pairs, prefer_dataset, source)
    pairs = attach_smiles(pairs, smiles, source)
    return pairs[["cell_line", "drug", "smiles", "ln_ic50"]].sort_values(["cell_line", "drug"]).reset_index(drop=True)


def parse_gdsc_drug_list(path: str | os.PathLike) -> pd.DataFrame:
    """GDSC's compound list (``Drug_list<timestamp>.csv``) as a drug <-> CID table (drug, pubchem_cid).

    drug is the ``Name`` column (the DRUG_NAME of the dose-response files). ``PubCHEM``
    entries 'none'/'several'/empty are skipped; a comma-separated list of CIDs keeps
    its first CID; a name listed under several drug ids keeps its first CID. Counts of
    what was skipped are logged. The result feeds `parse_pubchem_smiles`, and its
    pubchem_cid column the PubChem query (`smiles.pubchem_cid_list`).

    Raises InputError naming the file for a missing file, a missing Name or PubCHEM
    column (case-insensitive), or no drug with a CID.
    """
    path = Path(path)
    table = read_text_csv(path, "GDSC drug list")
    columns = {str(c).strip().casefold(): c for c in table.columns}
    missing = [c for c in ("name", "pubchem") if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join('Name' if c == 'name' else 'PubCHEM' for c in missing)} (has: {', '.join(map(str, table.columns)) or 'none'}); expected GDSC's Drug_list csv")
    names = table[columns["name"]].astype(str).str.strip()
    first_cid = table[columns["pubchem"]].astype(str).str.split(",").str[0].str.strip()
    numeric = first_cid.str.fullmatch(r"\d+") & (names != "")
    several = table[columns["pubchem"]].astype(str).str.contains(",")
    out = pd.DataFrame({"drug": names[numeric], "pubchem_cid": first_cid[numeric].astype(np.int64)})
    repeated = out["drug"].duplicated()
    if repeated.any():
        conflicting = out.groupby("drug")["pubchem_cid"].nunique()
        n_conflicting = int((conflicting > 1).sum())
        if n_conflicting:
            log.warning("%s: %d drug names carry different CIDs under different drug ids; the first is kept", path, n_conflicting)
        out = out[~repeated]
    log.info("%s: %d drugs with a PubChem CID; %d rows without a usable CID skipped, %d with several CIDs reduced to the first",
             path, len(out), int((~numeric).sum()), int((several & numeric).sum()))
    if out.empty:
        raise InputError(f"{path}: no drug has a numeric PubChem CID")
    return out.reset_index(drop=True)


def _resolve_duplicates(pairs: pd.DataFrame, prefer_dataset: str | None, source: str) -> pd.DataFrame:
    counts = pairs.groupby(["cell_line", "drug"])["ln_ic50"].transform("size")
    n_duplicated = int((counts > 1).sum())
    if prefer_dataset is not None and n_duplicated:
        has_preferred = (pairs["dataset"] == prefer_dataset).groupby([pairs["cell_line"], pairs["drug"]]).transform("any")
        keep = ~has_preferred | (pairs["dataset"] == prefer_dataset)
        if (~keep).any():
            log.info("%s: %d rows of pairs also measured in %s dropped in favour of %s", source, int((~keep).sum()), prefer_dataset, prefer_dataset)
        pairs = pairs[keep]
    merged = pairs.groupby(["cell_line", "drug"], as_index=False, sort=False)["ln_ic50"].mean()
    if len(merged) < len(pairs):
        log.info("%s: %d repeated measurements of %d (cell line, drug) pairs averaged", source, len(pairs) - len(merged),
                 int((pairs.groupby(["cell_line", "drug"]).size() > 1).sum()))
    return merged


def _cell_line_names(names) -> dict[int, str]:
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, pd.DataFrame):
        tables = [(names, "the names table")]
    else:
        paths = [names] if isinstance(names, (str, os.PathLike)) else list(names)
        tables = [(read_gdsc_dose_response(p), str(p)) for p in paths]
    lookup: dict[int, str] = {}
    for table, source in tables:
        if "COSMIC_ID" not in table.columns or "CELL_LINE_NAME" not in table.columns:
            raise InputError(f"{source}: needs columns COSMIC_ID and CELL_LINE_NAME to name cell lines")
        pairs = table[["COSMIC_ID", "CELL_LINE_NAME"]].dropna().drop_duplicates("COSMIC_ID")
        for cosmic, name in zip(pd.to_numeric(pairs["COSMIC_ID"], errors="coerce"), pairs["CELL_LINE_NAME"]):
            if np.isfinite(cosmic):
                lookup.setdefault(int(cosmic), str(name))
    return lookup
