"""DepMap (Broad Institute): its cell-line models (``Model.csv``), their RNA-seq expression, mutations and copy number.

Files, and where each fact about them comes from:

- ``Model.csv``: one row per model. Its identifier columns, which every release since
  22Q2 has (headers of real copies of a 22Q4/23Q1-era and a 23Q4/24Q2-era file, in
  tests/data/real/ccle_models/): ``ModelID`` (ACH-xxxxxx), ``CellLineName`` (e.g.
  ``NIH:OVCAR-3``), ``StrippedCellLineName`` (``NIHOVCAR3``), ``CCLEName``
  (``NIHOVCAR3_OVARY``), ``COSMICID`` (``905933`` or ``905933.0`` by release) and
  ``SangerModelID`` (``SIDM00105``). The older ``sample_info.csv`` (up to 22Q2) names them
  ``DepMap_ID``, ``cell_line_name``, ``stripped_cell_line_name``, ``CCLE_Name``,
  ``COSMICID``, ``Sanger_Model_ID`` and adds ``alias``: both are read. Take the models
  table of the same release as the expression file: a ModelID can name another line in
  another release (ACH-001172 is R256 in sample_info and U251MGDM in a later Model.csv).
- Expression, log2(TPM + 1) of protein-coding genes. Two layouts:
  * up to 24Q2 (at least): ``OmicsExpressionProteinCodingGenesTPMLogp1.csv``, one row per
    model, the first column unnamed holding the ModelID, then one column per gene named
    ``SYMBOL (ENTREZ)``;
  * 25Q2+: ``OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv``, one row per profile, an
    unnamed row-number column, metadata columns (``SequencingID`` or ``ProfileID``,
    ``ModelID``, ``IsDefaultEntryForModel`` or ``is_default_entry``, ``ModelConditionID``,
    ``IsDefaultEntryForMC``) before the genes; only the model's default entry is kept.
  Both are detected from the header. No real copy of either was found (every public copy
  is a Git LFS pointer), so these layouts are from documentation and public readers.
  DepMap files are served per release from figshare (e.g. 24Q4 = figshare+ article
  27993248); the portal's downloads sit behind a browser session (hence `manual:`).
- Gene matrices beside the expression, read over a chosen gene set by Entrez id (`parse_depmap_gene_matrix`):
  ``OmicsSomaticMutationsMatrixDamaging.csv`` (0 none, 1 a damaging mutation, 2 where their allele
  frequencies sum above 0.95) and ``OmicsCNGene.csv`` (copy ratio, 1 = neutral, empty = NA), each a row
  per model with the first column unnamed up to 24Q4 (real excerpts of a 24Q4-era copy, cut to 29 genes
  and their first column named ``ModelID`` by the copying project, in tests/data/real/depmap_*); later
  releases are read in the expression file's profile layout (`MatrixLayout`).

Cell lines of other sources meet DepMap's models through `DepMapModels.match`, by
identifiers first and names after: CCLE's legacy names (``AZ521_STOMACH`` is now
``AZ521_SMALL_INTESTINE``, ``HS895T_SKIN`` ``HS895T_FIBROBLAST``, ``RKN_OVARY``
``RKN_SOFT_TISSUE``; the 2015 drug file gives ``M059J`` no tissue at all) and GDSC's
COSMIC and Sanger ids.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from ingest.ledger import Ledger
from ingest.sources._common import describe_real, expression_block, read_header, read_table
from ingest.structures import name_key

MODEL_ID = re.compile(r"^ACH-\d+$")
GENE_COLUMN = re.compile(r"^(?P<symbol>.+?)\s+\((?P<entrez>\d+)\)$")
VALUE_SCALE = "log2_tpm_plus_1"
# Model.csv's identifier columns, and sample_info.csv's names for them
MODEL_COLUMNS = {
    "ModelID": "DepMap_ID",
    "CellLineName": "cell_line_name",
    "StrippedCellLineName": "stripped_cell_line_name",
    "CCLEName": "CCLE_Name",
    "COSMICID": "COSMICID",
    "SangerModelID": "Sanger_Model_ID",
}
DEFAULT_ENTRY = ("IsDefaultEntryForModel", "is_default_entry")
METADATA_COLUMNS = {"SequencingID", "ProfileID", "ModelID", "ModelConditionID", "IsDefaultEntryForMC", *DEFAULT_ENTRY}
NO_MATCH = ""
# CCLE lines DepMap renamed beyond what a stripped name recovers (stripped name then -> now): MB-157 is
# MDA-MB-157 in DepMap, as the scripts that join CCLE's legacy data to DepMap's sample info rename it
# (public R, Java and Python joins found by code search map MB157_BREAST to MDAMB157_BREAST).
RENAMED = {"MB157": "MDAMB157"}


@dataclass(frozen=True)
class DepMapModels:
    """DepMap's models: one row per ModelID with its names and ids (model_id, name, stripped,
    ccle_name, cosmic, sanger, aliases), and indexes to find them."""

    table: pd.DataFrame
    source: str

    @classmethod
    def read(cls, path: str | os.PathLike) -> DepMapModels:
        """``Model.csv`` (or the older ``sample_info.csv``); one line naming the file for a file
        without ModelID and CCLEName (or their sample_info names), or without any model."""
        path = Path(path)
        table = read_table(path, "DepMap Model.csv")
        layout = {new: new for new in MODEL_COLUMNS} if "ModelID" in table.columns else MODEL_COLUMNS
        missing = [layout[c] for c in ("ModelID", "CCLEName") if layout[c] not in table.columns]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(map(repr, missing))} (has: {', '.join(table.columns[:10])}, ...); "
                f"expected DepMap's Model.csv (ModelID, CellLineName, StrippedCellLineName, CCLEName, COSMICID, SangerModelID)"
            )
        text = {new: table[old].str.strip() if old in table.columns else pd.Series("", index=table.index) for new, old in layout.items()}
        cosmic = pd.to_numeric(text["COSMICID"], errors="coerce")
        models = pd.DataFrame(
            {
                "model_id": text["ModelID"],
                "name": text["CellLineName"],
                "stripped": text["StrippedCellLineName"],
                "ccle_name": text["CCLEName"].str.upper(),
                "sanger": text["SangerModelID"],
                "cosmic": pd.array([int(c) if np.isfinite(c) and c > 0 else None for c in cosmic], dtype="Int64"),
                "aliases": table["alias"].map(lambda a: tuple(s.strip() for s in str(a).split(",") if s.strip()))
                if "alias" in table.columns
                else [()] * len(table),
            }
        )
        models = models[models["model_id"].str.match(MODEL_ID.pattern)].drop_duplicates("model_id").reset_index(drop=True)
        if models.empty:
            raise InputError(f"{path}: no model with a DepMap ModelID (ACH-...)")
        return cls(models, str(path))

    def _index(self, keys: pd.Series) -> dict:
        index: dict = {}
        for key, model in zip(keys, self.table["model_id"]):
            if key is not None and key is not pd.NA and key != "":
                index.setdefault(key, set()).add(model)
        return index

    def match(
        self,
        *,
        ccle_names: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        cosmic: Sequence | None = None,
        sanger: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The model of each cell line of another source, given what that source knows of it.

        For each position, the first rule that names exactly one model wins: the Sanger model
        id, the COSMIC id, the full CCLE name, the cell line name (case ignored), then the
        stripped name (letters and digits only, compared with the models' stripped names, names
        and aliases; a CCLE name counts by its part before the tissue; `RENAMED` lines by their
        new name). Returns one row per
        position: model_id ('' where none), matched_by, and why not where none ('several
        models: ...' or 'no model').
        """
        lengths = {len(v) for v in (ccle_names, names, cosmic, sanger) if v is not None}
        if len(lengths) != 1:
            raise ValueError("give one or more identifier lists of the same length")
        n = lengths.pop()
        t = self.table
        rules = []
        if sanger is not None:
            rules.append(("Sanger model id", self._index(t["sanger"]), [str(s).strip() for s in sanger]))
        if cosmic is not None:
            numbers = pd.to_numeric(pd.Series(list(cosmic), dtype=object), errors="coerce")
            rules.append(("COSMIC id", self._index(t["cosmic"]), [int(c) if np.isfinite(c) and c > 0 else None for c in numbers]))
        if ccle_names is not None:
            rules.append(("CCLE name", self._index(t["ccle_name"]), [str(c).strip().upper() for c in ccle_names]))
        if names is not None:
            rules.append(("cell line name", self._index(t["name"].str.casefold()), [str(c).strip().casefold() for c in names]))
        keyed = pd.concat([t["stripped"].map(name_key), t["name"].map(name_key), t["aliases"].explode().dropna().map(name_key)]).rename(
            "key"
        )
        by_key = {}
        for key, model in zip(keyed, t.loc[keyed.index, "model_id"]):
            if key:
                by_key.setdefault(key, set()).add(model)
        renamed = {name_key(old): name_key(new) for old, new in RENAMED.items()}
        stripped = [
            [name_key(str(c).split("_")[0]) for c in ccle_names] if ccle_names is not None else [],
            [name_key(c) for c in names] if names is not None else [],
        ]
        stripped = [[renamed.get(k, k) for k in keys] for keys in stripped]
        rows = []
        for i in range(n):
            model, how, why = NO_MATCH, "", "no model"
            for label, index, values in rules:
                found = index.get(values[i], set())
                if len(found) == 1:
                    model, how = next(iter(found)), label
                    break
                if len(found) > 1 and why == "no model":
                    why = f"several models by {label}: {', '.join(sorted(found))}"
            if not model:
                keys = {k[i] for k in stripped if k and k[i]}
                found = set().union(*(by_key.get(k, set()) for k in keys)) if keys else set()
                if len(found) == 1:
                    model, how = next(iter(found)), "stripped name"
                elif len(found) > 1 and why == "no model":
                    why = f"several models by stripped name: {', '.join(sorted(found))}"
            rows.append({"model_id": model, "matched_by": how, "why_not": "" if model else why})
        return pd.DataFrame(rows)

    def names_of(self, model_ids: Sequence[str]) -> pd.DataFrame:
        """cell_line_name and ccle_name of each model id ('' where unknown)."""
        table = self.table.set_index("model_id")
        return pd.DataFrame(
            {
                "cell_line_name": [table["name"].get(m, "") for m in model_ids],
                "ccle_name": [table["ccle_name"].get(m, "") for m in model_ids],
            },
            index=pd.Index(model_ids, dtype=object),
        )


def _unnamed(column: str) -> bool:
    """A header field left empty (pandas names it 'Unnamed: N')."""
    return column == "" or column.startswith("Unnamed:")


def _all_model_ids(values: pd.Series) -> bool:
    return bool(values.astype(str).str.strip().str.match(MODEL_ID.pattern).all())


@dataclass(frozen=True)
class MatrixLayout:
    """Where a DepMap model x gene matrix (expression, copy number, mutations) keeps its ModelIDs.

    Up to 24Q4 the first, unnamed column holds the ModelID (one row per model). From 25Q2 a row is a
    profile: an unnamed row number, then metadata (``SequencingID`` or ``ProfileID``, ``ModelID``,
    the model's default-entry flag, ...) before the genes; only the model's default entry is kept.
    A copy whose unnamed first column was renamed ``ModelID`` reads as the second layout without a flag.
    """

    id_column: str
    default_column: str | None  # the model's default-entry flag, where rows are profiles
    metadata: frozenset  # every column that is no gene

    @classmethod
    def of(cls, columns: Sequence[str]) -> MatrixLayout:
        if "ModelID" in columns:
            default = next((c for c in DEFAULT_ENTRY if c in columns), None)
            return cls("ModelID", default, frozenset(c for c in columns if c in METADATA_COLUMNS or _unnamed(c)))
        return cls(columns[0], None, frozenset({columns[0]}))

    def model_rows(self, table: pd.DataFrame, path: Path, kind: str, ledger: Ledger | None) -> tuple[pd.DataFrame, pd.Series]:
        """The rows of `table` to keep (each model's default entry, where rows are profiles) and their ModelIDs;
        one line naming the file for a table without rows or with a row that has no ModelID."""
        if self.default_column is not None:
            chosen = table[self.default_column].astype(str).str.strip().str.casefold().isin(["yes", "true", "1"])
            if ledger is not None:
                ledger.record(
                    "default_profile",
                    "profiles",
                    len(table),
                    int(chosen.sum()),
                    f"{path.name}: profiles that are not their model's default entry ({self.default_column}) left out",
                    expected=True,
                )
            table = table[chosen]
        if table.empty:
            raise InputError(f"{path}: no {kind} profiles")
        model_ids = table[self.id_column].astype(str).str.strip()
        bad = ~model_ids.str.match(MODEL_ID.pattern)
        if bad.any():
            raise InputError(f"{path}: {int(bad.sum())} rows have no DepMap ModelID (first: {model_ids[bad].iloc[0]!r})")
        return table, model_ids


def parse_depmap_expression(path: str | os.PathLike, models: DepMapModels, dataset: str, ledger: Ledger | None = None) -> ad.AnnData:
    """Cell lines x genes from a DepMap log2(TPM+1) expression CSV (either layout), keyed by ModelID.

    obs_names and ``obs['cell_line']``: the ModelID; ``obs['cell_line_name']`` and
    ``obs['ccle_name']`` from `models` ('' where Model.csv has no row); ``obs['tissue'] =
    'tumor'``. var_names: gene symbols (the "SYMBOL" of "SYMBOL (ENTREZ)"), ``var['entrez_id']``
    the Entrez id (-1 when the column has none); a symbol on several columns is their mean.

    Raises InputError naming the file for a missing file, a header that is neither DepMap
    layout, a row without a ModelID, and missing/non-numeric/negative values.
    """
    path = Path(path)
    ledger = ledger if ledger is not None else Ledger(dataset)
    table = read_table(path, "DepMap expression CSV (OmicsExpression...TPMLogp1)", text=False)  # numbers, not 36M strings
    columns = list(table.columns)
    layout = MatrixLayout.of(columns)
    if layout.id_column != "ModelID" and not _unnamed(layout.id_column) and not _all_model_ids(table[layout.id_column]):
        raise InputError(
            f"{path}: neither a ModelID column nor DepMap ids (ACH-...) in the first column; expected a DepMap OmicsExpression...TPMLogp1 CSV"
        )
    table, model_ids = layout.model_rows(table, path, "expression", ledger)
    skip = layout.metadata
    gene_columns = [c for c in columns if c not in skip]
    parsed = [GENE_COLUMN.match(c) for c in gene_columns]
    if not any(parsed):
        raise InputError(f"{path}: no gene column of the form 'SYMBOL (ENTREZ)' (first columns: {', '.join(gene_columns[:3])})")
    symbols = [m.group("symbol").strip() if m else c.strip() for c, m in zip(gene_columns, parsed)]
    entrez = [int(m.group("entrez")) if m else -1 for m in parsed]
    values = expression_block(
        table[gene_columns], path, lambda row, column: f"{model_ids.iloc[row]}, {gene_columns[column]}", "expected log2(TPM + 1)"
    )
    first = ~model_ids.duplicated().to_numpy()
    ledger.record("read", "cell_lines", len(model_ids), int(first.sum()), "a model with two profiles keeps its first", expected=True)
    model_ids, values = model_ids[first], values[first]

    genes, inverse = np.unique(np.asarray(symbols, dtype=object).astype(str), return_inverse=True)
    merge = sp.csr_matrix((np.ones(len(inverse)), (np.arange(len(inverse)), inverse)), shape=(len(inverse), len(genes)))
    merge = merge @ sp.diags(1.0 / np.asarray(merge.sum(axis=0)).ravel())  # a symbol is the mean of its columns
    X = sp.csr_matrix(values) @ merge
    entrez_by_gene = pd.Series(entrez).groupby(inverse).first().to_numpy()
    keys = model_ids.tolist()
    obs = models.names_of(keys).assign(cell_line=keys, tissue=pd.Categorical(["tumor"] * len(keys), categories=["normal", "tumor"]))
    var = pd.DataFrame({"entrez_id": np.asarray(entrez_by_gene, dtype=np.int64)}, index=pd.Index(genes.astype(str), dtype=object))
    adata = ad.AnnData(X=sp.csr_matrix(X, dtype=np.float32), obs=obs[["cell_line", "cell_line_name", "ccle_name", "tissue"]], var=var)
    describe_real(
        adata,
        dataset,
        VALUE_SCALE,
        VALUE_SCALE,
        cell_line_key="DepMap ModelID",
        source=f"DepMap {path.name} + {Path(models.source).name}; log2(TPM + 1) of protein-coding genes, unchanged",
    )
    return adata


# (what a profile holds, what the file is) of the two gene matrices the drug-response datasets add
MUTATIONS = ("mutation", "DepMap damaging-mutation matrix (OmicsSomaticMutationsMatrixDamaging.csv)")
COPY_NUMBER = ("copy-number", "DepMap gene copy-number matrix (OmicsCNGene.csv)")


def parse_depmap_mutations(path: str | os.PathLike, genes: pd.Series, ledger: Ledger | None = None) -> pd.DataFrame:
    """DepMap's damaging-mutation matrix over `genes` (Entrez id -> symbol), as DepMap gives it: 0 (none), 1, or
    2 where the allele frequencies of the gene's damaging mutations sum above 0.95 (DepMap's README)."""
    return parse_depmap_gene_matrix(path, genes, MUTATIONS, ledger, non_negative=True)


def parse_depmap_copy_number(path: str | os.PathLike, genes: pd.Series, ledger: Ledger | None = None) -> pd.DataFrame:
    """DepMap's gene-level copy number over `genes` (Entrez id -> symbol), as DepMap gives it (OmicsCNGene: the copy
    ratio relative to the model's ploidy, 1 = neutral; CCLE_gene_cn.csv up to 22Q2: log2(ratio + 1))."""
    return parse_depmap_gene_matrix(path, genes, COPY_NUMBER, ledger)


def parse_depmap_gene_matrix(
    path: str | os.PathLike, genes: pd.Series, matrix: tuple[str, str], ledger: Ledger | None = None, *, non_negative: bool = False
) -> pd.DataFrame:
    """Models x `genes` of a DepMap gene matrix (either layout of `MatrixLayout`), float32, indexed by ModelID.

    `genes`: Entrez id -> symbol, in the order wanted. Columns are chosen by the Entrez id of their
    ``SYMBOL (ENTREZ)`` name (a symbol renamed since the release still finds its gene) and named by
    `genes`; only those columns are read. Genes the file lacks are left out (the caller counts them);
    empty cells stay NaN; a model on two rows keeps its first. One line naming the file refuses: a
    header without a ModelID column, a gene column not named ``SYMBOL (ENTREZ)``, a row without a
    ModelID, a value that is no number (or a negative one, with `non_negative`).
    """
    path = Path(path)
    kind, what = matrix
    header = read_header(path, what)
    layout = MatrixLayout.of(header)
    if GENE_COLUMN.match(layout.id_column):
        raise InputError(f"{path}: no ModelID column (the first column, {layout.id_column!r}, is a gene); expected the {what}")
    positions = _gene_positions(header, layout, path, what, genes)
    keep = [header.index(c) for c in (layout.id_column, layout.default_column) if c is not None] + list(positions)
    table = read_table(path, what, text=False, columns=sorted(keep))
    table.columns = [header[k] for k in sorted(keep)]  # pandas names an empty header field 'Unnamed: 0'
    table, model_ids = layout.model_rows(table, path, kind, ledger)
    values = _numeric_values(table[[header[k] for k in positions]], path, model_ids, non_negative)
    first = ~model_ids.duplicated().to_numpy()
    if ledger is not None and not first.all():
        ledger.record(
            "read", "profiles", len(model_ids), int(first.sum()), f"{path.name}: a model on two rows keeps its first", expected=True
        )
    symbols = [genes[int(GENE_COLUMN.match(header[k]).group("entrez"))] for k in positions]
    frame = pd.DataFrame(values[first], index=pd.Index(model_ids[first].tolist(), name="ModelID"), columns=symbols)
    return frame[[s for s in genes if s in frame.columns]]  # in the order of `genes`


def _gene_positions(header: list[str], layout: MatrixLayout, path: Path, what: str, genes: pd.Series) -> list[int]:
    """The header positions of the columns of `genes` (by Entrez id; the first column of an id named twice)."""
    gene_columns = [(k, c) for k, c in enumerate(header) if c not in layout.metadata]
    if not gene_columns:
        raise InputError(f"{path}: no gene columns after {', '.join(map(repr, header))}; expected the {what}")
    named = [(k, GENE_COLUMN.match(c)) for k, c in gene_columns]
    odd = [c for (k, c), (_, m) in zip(gene_columns, named) if m is None]
    if odd:
        raise InputError(
            f"{path}: {len(odd)} of {len(gene_columns)} gene columns are not named 'SYMBOL (ENTREZ)' "
            f"(first: {odd[0]!r}); expected the {what}"
        )
    wanted, positions = set(int(e) for e in genes.index), {}
    for k, match in named:
        entrez = int(match.group("entrez"))
        if entrez in wanted and entrez not in positions:
            positions[entrez] = k
    return sorted(positions.values())


def _numeric_values(frame: pd.DataFrame, path: Path, model_ids: pd.Series, non_negative: bool) -> np.ndarray:
    """`frame` as float32; empty cells NaN; one line naming the file and the first value that is no number (or negative)."""
    numbers = frame.apply(pd.to_numeric, errors="coerce")
    text = frame.notna().to_numpy() & numbers.isna().to_numpy()
    if text.any():
        row, column = np.argwhere(text)[0]
        raise InputError(
            f"{path}: {int(text.sum())} values are not numbers (first: {frame.iat[row, column]!r} at {model_ids.iloc[row]}, {frame.columns[column]})"
        )
    values = numbers.to_numpy(dtype=np.float32)
    if non_negative and (values < 0).any():
        row, column = np.argwhere(values < 0)[0]
        raise InputError(
            f"{path}: negative values (first: {values[row, column]:g} at {model_ids.iloc[row]}, {frame.columns[column]}); expected counts"
        )
    return values
