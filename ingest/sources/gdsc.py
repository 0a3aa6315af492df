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
- Drugs get their structures, and lose their pairs without one, in `ingest.structures`.

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
from collections.abc import Iterable, Mapping
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from ingest.ledger import Ledger
from ingest.sources._common import check_full_header, check_zip, describe_real, expression_block, read_table

log = logging.getLogger(__name__)

RELEASE = "8.5"
RESPONSE_URLS = {
    "GDSC1": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC1_fitted_dose_response_27Oct23.xlsx",
    "GDSC2": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC2_fitted_dose_response_27Oct23.xlsx",
}
EXPRESSION_URL = "https://www.cancerrxgene.org/gdsc1000/GDSC1000_WebResources/Data/preprocessed/Cell_line_RMA_proc_basalExp.txt.zip"
COMPOUNDS_PAGE = "https://www.cancerrxgene.org/compounds"

RESPONSE_REQUIRED = ["COSMIC_ID", "DRUG_NAME", "LN_IC50"]
DRUG_LIST_REQUIRED = ["Name", "PubCHEM"]
DRUG_LIST_COLUMNS = ["drug_id", "drug", "synonyms", "pubchem_cid"]
EXPRESSION_GENE = "GENE_SYMBOLS"
EXPRESSION_TITLE = "GENE_title"
DATA_COLUMN = re.compile(r"^DATA\.(\d+)$")
VALUE_SCALE = "rma_log2"


def parse_gdsc_expression(
    path: str | os.PathLike, names: Mapping | pd.DataFrame | str | os.PathLike | Iterable | None = None, ledger: Ledger | None = None
) -> ad.AnnData:
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
    check_zip(path)  # the .zip GDSC serves: refused if it would unpack past the cap
    try:
        header = pd.read_csv(path, sep="\t", header=None, nrows=1, dtype=str).iloc[0].tolist()
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable tab-separated file ({exc.__class__.__name__})") from None
    header = [str(h).strip() for h in header]
    if EXPRESSION_GENE not in header:
        raise InputError(
            f"{path}: missing column {EXPRESSION_GENE} (header starts {', '.join(header[:4])}); expected GDSC's Cell_line_RMA_proc_basalExp.txt"
        )
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
    values = expression_block(
        body[data_positions],
        path,
        lambda row, column: f"gene '{symbols.iloc[row]}', DATA.{cosmic[column]}",
        "RMA log2 values should be positive",
    )
    named = (symbols != "").to_numpy()
    if not named.any():
        raise InputError(f"{path}: no row has a gene symbol")
    genes, inverse = np.unique(symbols[named].to_numpy(), return_inverse=True)
    ledger = ledger if ledger is not None else Ledger("gdsc")
    ledger.record(
        "read",
        "genes",
        len(symbols),
        int(named.sum()),
        f"probe-set rows without a gene symbol dropped; {int(named.sum() - len(genes))} rows sharing a symbol averaged",
        changed=int(named.sum() - len(genes)),
        expected=True,
    )
    merge = sp.csr_matrix((np.ones(len(inverse)), (inverse, np.arange(len(inverse)))), shape=(len(genes), len(inverse)))
    merge = sp.diags(1.0 / np.asarray(merge.sum(axis=1)).ravel()) @ merge  # a gene is the mean of its rows
    X = (merge @ values[named]).T  # cell lines x genes

    cosmic = np.asarray(cosmic, dtype=np.int64)
    first = ~pd.Index(cosmic).duplicated()
    ledger.record("read", "cell_lines", len(cosmic), int(first.sum()), "a COSMIC id with two columns keeps its first", expected=True)
    X, cosmic = X[first], cosmic[first]
    keys = [str(c) for c in cosmic]
    obs = pd.DataFrame(
        {"cell_line": keys, "cosmic_id": cosmic, "tissue": pd.Categorical(["tumor"] * len(keys), categories=["normal", "tumor"])},
        index=pd.Index(keys, dtype=object),
    )
    if names is not None:
        lookup = _cell_line_names(names)
        obs["cell_line_name"] = [lookup.get(int(c), "") for c in cosmic]
    adata = ad.AnnData(X=sp.csr_matrix(X, dtype=np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(genes.astype(str), dtype=object)))
    describe_real(
        adata,
        "gdsc",
        VALUE_SCALE,
        VALUE_SCALE,
        cell_line_key="COSMIC id",
        source=f"GDSC1000 Cell_line_RMA_proc_basalExp.txt ({EXPRESSION_URL}); RMA (log2) Affymetrix HG-U219 values, unchanged",
    )
    return adata


def read_gdsc_dose_response(path: str | os.PathLike) -> pd.DataFrame:
    """One fitted dose-response file (.xlsx or .csv/.tsv) as a DataFrame, its required columns checked."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: GDSC dose-response file not found")
    check_zip(path)  # an .xlsx is a zip
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            try:
                import openpyxl  # noqa: F401  (pandas needs it for .xlsx; not a declared dependency)
            except ImportError:
                raise InputError(
                    f"{path}: reading .xlsx needs the openpyxl package (pip install openpyxl), or give the .csv version"
                ) from None
            table = pd.read_excel(path, sheet_name=0)
        else:
            table = pd.read_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",", low_memory=False)
    except InputError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable dose-response table ({exc.__class__.__name__})") from None
    check_full_header(table, path, "GDSC fitted dose response")
    table.columns = [str(c).replace("\ufeff", "").strip() for c in table.columns]  # the CSV twin may start with a byte-order mark
    missing = [c for c in RESPONSE_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.columns[:12]) or 'none'}); expected GDSC's fitted dose response"
        )
    if table.empty:
        raise InputError(f"{path}: no dose-response rows")
    return table


def parse_gdsc_response(
    dose_response_path: str | os.PathLike | Iterable[str | os.PathLike], ledger: Ledger | None = None, prefer_dataset: str | None = "GDSC2"
) -> pd.DataFrame:
    """GDSC1 and/or GDSC2 fitted dose response as pairs: cell_line, drug, ln_ic50, and the cell line's
    cell_line_name and sanger_model_id (for joins to DepMap's models).

    `dose_response_path`: one file or several (GDSC1 and GDSC2). cell_line is the COSMIC id
    string (the key of `parse_gdsc_expression`), drug the DRUG_NAME, ln_ic50 the LN_IC50
    (natural log of IC50 in µM). Duplicates resolved as the module docstring says. `ledger`
    gets steps read, duplicates and censoring (fitted IC50s beyond the tested concentrations,
    extrapolated by GDSC's curve fit, kept). Rows sorted by cell line, drug; drugs get their
    structures later (`ingest.structures`).

    Raises InputError naming the file for a missing file, an unreadable table, a
    missing column, a missing or non-numeric COSMIC id, drug name or LN_IC50, and no rows.
    """
    if prefer_dataset not in (None, "GDSC1", "GDSC2"):
        raise InputError(f"prefer_dataset must be 'GDSC1', 'GDSC2' or None, not {prefer_dataset!r}")
    ledger = ledger if ledger is not None else Ledger("gdsc")
    paths = [dose_response_path] if isinstance(dose_response_path, (str, os.PathLike)) else list(dose_response_path)
    if not paths:
        raise InputError("GDSC dose response: no file given")
    parts = []
    for path in map(Path, paths):
        table = read_gdsc_dose_response(path)
        cosmic = pd.to_numeric(table["COSMIC_ID"], errors="coerce")
        bad = ~np.isfinite(cosmic.to_numpy(dtype=float)) | (cosmic.fillna(-1) % 1 != 0).to_numpy()
        if bad.any():
            raise InputError(
                f"{path}: {int(bad.sum())} rows have a missing or non-integer COSMIC_ID (first: {table['COSMIC_ID'][bad].iloc[0]!r})"
            )
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
        concentration = {
            c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) if c in table.columns else np.full(len(table), np.nan)
            for c in ("MIN_CONC", "MAX_CONC")
        }
        parts.append(
            pd.DataFrame(
                {
                    "cell_line": cosmic.astype(np.int64).astype(str).to_numpy(),
                    "drug": drug.astype(str).str.strip().to_numpy(),
                    "ln_ic50": ln_ic50.astype(float).to_numpy(),
                    "dataset": dataset.to_numpy(),
                    "above": ln_ic50.to_numpy(dtype=float) > np.log(concentration["MAX_CONC"]),
                    "below": ln_ic50.to_numpy(dtype=float) < np.log(concentration["MIN_CONC"]),
                    "cell_line_name": table["CELL_LINE_NAME"].fillna("").astype(str).str.strip().to_numpy()
                    if "CELL_LINE_NAME" in table.columns
                    else "",
                    "sanger_model_id": table["SANGER_MODEL_ID"].fillna("").astype(str).str.strip().to_numpy()
                    if "SANGER_MODEL_ID" in table.columns
                    else "",
                }
            )
        )
    pairs = pd.concat(parts, ignore_index=True)
    source = ", ".join(map(str, paths))
    ledger.record(
        "read",
        "rows",
        len(pairs),
        len(pairs),
        f"dose-response rows of {len(paths)} file(s); "
        f"{pairs['cell_line'].nunique()} cell lines (COSMIC ids), {pairs['drug'].nunique()} drugs",
    )
    names = pairs.drop_duplicates("cell_line").set_index("cell_line")[["cell_line_name", "sanger_model_id"]]
    merged = _resolve_duplicates(pairs, prefer_dataset, source, ledger)
    ledger.record(
        "censoring",
        "pairs",
        len(merged),
        len(merged),
        f"{int(merged['above'].sum())} fitted IC50s above the highest tested concentration and {int(merged['below'].sum())} "
        f"below the lowest (extrapolated by the curve fit), kept as fitted",
        changed=int((merged["above"] | merged["below"]).sum()),
    )
    merged = merged.join(names, on="cell_line")
    return (
        merged[["cell_line", "drug", "ln_ic50", "cell_line_name", "sanger_model_id"]]
        .sort_values(["cell_line", "drug"])
        .reset_index(drop=True)
    )


def parse_gdsc_drug_list(path: str | os.PathLike) -> pd.DataFrame:
    """GDSC's compound list (``Drug_list<timestamp>.csv``) as a table drug_id, drug, synonyms, pubchem_cid.

    One row per distinct drug name (the ``Name`` column, the DRUG_NAME of the dose-response
    files; the list repeats a drug once per screen and sometimes under two drug ids).
    ``synonyms``: a tuple of the comma-separated names of the ``Synonyms`` column (every row of
    the name pooled). ``pubchem_cid``: the first numeric CID of the name's rows (``PubCHEM`` holds
    one CID, a comma-separated list whose first is kept, or 'none'/'several'/empty: missing);
    names without one are kept, so that they can be looked up by name (`ingest.structures`).

    One line naming the file refuses a missing file, a header without Name or PubCHEM
    (any case), rows with more fields than the header (some downloads of the list carry the
    2019 header of 8 names over rows of 10 fields, which would shift every column), and a
    list without a single named drug.
    """
    path = Path(path)
    table = read_table(path, "GDSC compound list (Drug_list csv)", DRUG_LIST_REQUIRED, case_insensitive=True)
    names = table["Name"].str.strip()
    if (names == "").all():
        raise InputError(f"{path}: no drug has a Name")
    table = table[names != ""].assign(Name=names[names != ""])
    cids = table["PubCHEM"].str.split(",").str[0].str.strip()
    cids = cids.where(cids.str.fullmatch(r"\d+") & (cids != "0"), "")
    synonyms = table["Synonyms"] if "Synonyms" in table.columns else pd.Series("", index=table.index)
    ids = table["drug_id"] if "drug_id" in table.columns else pd.Series("", index=table.index)
    rows = []
    for name, group in pd.DataFrame({"drug": table["Name"], "cid": cids, "synonyms": synonyms, "drug_id": ids}).groupby("drug", sort=False):
        found = [int(c) for c in group["cid"] if c]
        pooled = dict.fromkeys(s.strip() for text in group["synonyms"] for s in str(text).split(",") if s.strip())
        if len(set(found)) > 1:
            log.info(
                "%s: drug %s carries CIDs %s under different rows; the first is used", path, name, ", ".join(map(str, dict.fromkeys(found)))
            )
        rows.append(
            {
                "drug_id": ";".join(dict.fromkeys(i for i in group["drug_id"] if i)),
                "drug": name,
                "synonyms": tuple(pooled),
                "pubchem_cid": found[0] if found else None,
            }
        )
    out = pd.DataFrame(rows, columns=DRUG_LIST_COLUMNS)
    out["pubchem_cid"] = out["pubchem_cid"].astype("Int64")
    log.info("%s: %d drugs, %d with a PubChem CID", path, len(out), int(out["pubchem_cid"].notna().sum()))
    return out


def _resolve_duplicates(pairs: pd.DataFrame, prefer_dataset: str | None, source: str, ledger: Ledger) -> pd.DataFrame:
    """One row per (cell line, drug): the preferred screen's rows where it measured the pair, averaged."""
    rows = len(pairs)
    dropped = 0
    if prefer_dataset is not None:
        has_preferred = (pairs["dataset"] == prefer_dataset).groupby([pairs["cell_line"], pairs["drug"]]).transform("any")
        keep = ~has_preferred | (pairs["dataset"] == prefer_dataset)
        dropped = int((~keep).sum())
        pairs = pairs[keep]
    merged = pairs.groupby(["cell_line", "drug"], as_index=False, sort=False).agg(
        ln_ic50=("ln_ic50", "mean"), above=("above", "any"), below=("below", "any"), n=("ln_ic50", "size")
    )
    repeated = merged["n"] > 1
    ledger.record(
        "duplicates",
        "rows",
        rows,
        len(merged),
        f"{dropped} rows of pairs also measured in {prefer_dataset} left for that screen's; "
        f"{int(merged.loc[repeated, 'n'].sum())} repeated measurements of {int(repeated.sum())} pairs averaged (mean ln IC50)"
        if prefer_dataset
        else f"{int(repeated.sum())} pairs measured more than once: their ln IC50 averaged",
        changed=int(repeated.sum()),
        expected=True,
    )
    return merged.drop(columns="n")


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
