"""PanglaoDB human samples (Franzén, Gan & Björkegren 2019, Database,
"PanglaoDB: a web server for exploration of mouse and human single-cell RNA
sequencing data"): the normal half of CellLM's pretraining corpus.

Source layout and where each fact comes from:

- One R data file per sample, ``SRA<digits>_SRS<digits>.sparse.RData``
  (``SRA<digits>.sparse.RData`` when the study has one sample, PanglaoDB's
  "notused" SRS); names as loaded by public analyses, e.g.
  ``load("SRA850958_SRS4386125.sparse.RData")``, and a loader that builds
  ``'%s%s.sparse.RData' % (SRA, '_' + SRS if SRS != 'notused' else '')``.
  Downloads are offered per sample on https://panglaodb.se (sample pages,
  "Download" links); the exact URL pattern was not verified here.
- Content: one object named ``sm``, an R ``Matrix::dgCMatrix`` (genes x
  cells, column-compressed: slots i, p, x, Dim, Dimnames) of read/UMI counts;
  public code does ``load(...)`` then ``rownames(sm)``/``CreateSeuratObject(sm)``.
- Gene names are ``<symbol>_<Ensembl id with version>``, e.g.
  ``0610009O20Rik_ENSMUSG00000024442.5`` in a mouse sample and symbols that
  themselves contain "_" (``00R_AC107638.2_ENSMUSG00000111425.1``), so the
  symbol is everything before the last ``_ENS...`` (public R code uses
  ``sub("[_].*", "", ...)``, which would cut such symbols short). Human
  samples carry ``ENSG`` ids; mouse ones (``ENSMUSG``) are refused here.
- Cell barcodes are the column names (Dimnames[[2]]).

The sample list (``read_panglaodb_sample_list``): PanglaoDB's own table of its samples,
``data/metadata.txt`` of the authors' repository (github.com/oscar-franzen/PanglaoDB; its
README: "comma-delimited tables without headers", columns 1-12 = SRA accession, SRS
accession, tissue origin, scRNA-seq protocol, species, sequencing instrument, number of
expressed genes, median number of expressed genes per cell, number of cell clusters, tumor?
(1 true), primary adult tissue?, cell line?). Fields are double-quoted, a missing value is
an unquoted ``\\N`` (a MySQL export); a study with one sample has SRS ``notused`` (the file
is then ``SRA<digits>.sparse.RData``), and one row keeps both accessions in its first field
(``"ERA846165_ERS1600395","notused"``). A real excerpt with its provenance is in
tests/data/real/panglaodb_samples/.

Reading .RData needs the pip package ``rdata`` (pure Python, reads R's XDR
serialization and returns S4 objects such as a dgCMatrix as their slots); it
is imported only when a file is read. It is NOT a dependency of the project
yet: add ``rdata`` (it pulls in ``xarray``) to the data extras to use this parser.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.sources._common import categorical_obs, concat_samples, corpus_scale, count_scale, describe_real, existing_file

SUFFIX = ".sparse.RData"
OBJECT = "sm"
GENE = re.compile(r"^(?P<symbol>.+)_(?P<ensembl>ENS(?P<species>[A-Z]*)G\d+(?:\.\d+)?)$")
TISSUES = ("normal", "tumor")
# A sample's name, as its file is named: the SRA submission accession, then the SRS sample accession
# unless the study has a single sample (ERA/DRA and ERS/DRS: the same archive's European and Japanese mirrors)
SAMPLE_NAME = re.compile(r"^(?P<sra>[SED]RA\d+)(?:_(?P<srs>[SED]RS\d+))?$")
NOT_USED = "notused"  # the SRS field of a study with one sample
NULL = "\\N"  # a missing value in the sample list
SAMPLE_LIST_COLUMNS = (
    "sra",
    "srs",
    "tissue",
    "protocol",
    "species",
    "instrument",
    "n_genes",
    "median_genes_per_cell",
    "n_clusters",
    "tumor",
    "primary_adult",
    "cell_line",
)


def _rdata(path: Path):
    try:
        import rdata
    except ImportError:
        raise InputError(f"{path}: reading PanglaoDB .RData files needs the Python package 'rdata' (pip install rdata)") from None
    return rdata


def read_panglaodb_sample(path: str | os.PathLike, tissue: str = "normal") -> ad.AnnData:
    """One ``SRA..._SRS....sparse.RData`` file as an AnnData (obs `tissue`, `sample`)."""
    path = existing_file(path)
    if tissue not in TISSUES:
        raise InputError(f"{path}: tissue must be one of {', '.join(TISSUES)}, got {tissue!r}")
    rdata = _rdata(path)
    # a dgCMatrix comes back as its slots (i, p, x, Dim, Dimnames); say so, so rdata does not warn about it
    constructors = {**rdata.conversion.DEFAULT_CLASS_MAP, "dgCMatrix": lambda obj, attrs: obj}
    try:
        objects = rdata.read_rda(path, constructor_dict=constructors)
    except Exception as exc:  # the parser raises many types (ValueError, NotImplementedError, EOFError...)
        raise InputError(f"{path}: not a readable R data file ({type(exc).__name__}: {exc})") from None
    sm = objects.get(OBJECT)
    if sm is None:
        raise InputError(f"{path}: no object '{OBJECT}' (has: {', '.join(objects) or 'none'}; expected PanglaoDB's dgCMatrix 'sm')")
    counts, genes, cells = _dgcmatrix(sm, path)

    parsed = [GENE.match(g) for g in genes]
    matched = [m for m in parsed if m]
    if len(matched) < max(1, len(genes) // 2):
        example = next((g for g, m in zip(genes, parsed) if not m), genes[0])
        raise InputError(f"{path}: gene names do not look like PanglaoDB's '<symbol>_<Ensembl id>' (e.g. {example!r})")
    species = {m.group("species") for m in matched}
    if species - {""}:
        raise InputError(
            f"{path}: not a human sample (Ensembl ids ENS{sorted(species - {''})[0]}G...); PanglaoDB human samples carry ENSG ids"
        )
    symbols = [m.group("symbol") if m else g for g, m in zip(genes, parsed)]
    ensembl = [m.group("ensembl") if m else "" for m in parsed]

    X = counts.T.tocsr().astype(np.float32)  # dgCMatrix is genes x cells, column-compressed
    if X.nnz and not np.isfinite(X.data).all():
        raise InputError(f"{path}: NaN or infinite values in the count matrix")
    if X.nnz and X.data.min() < 0:
        raise InputError(f"{path}: negative values in the count matrix")
    X.eliminate_zeros()
    X, names, codes = sum_duplicate_genes(X, symbols)
    ensembl_ids = pd.Series(ensembl).groupby(codes).agg(lambda ids: ";".join(i for i in ids if i)).to_numpy()
    sample = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    obs = pd.DataFrame({"tissue": tissue, "sample": sample}, index=pd.Index([f"{sample}:{c}" for c in cells], dtype=object))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame({"ensembl_id": ensembl_ids}, index=pd.Index(names, dtype=object)))
    validate_dataset(adata, str(path), required_obs=("tissue", "sample"))
    adata.uns["count_scale"] = count_scale(adata.X)
    return adata


def _dgcmatrix(sm: Any, path: Path) -> tuple[sp.csc_matrix, list[str], list[str]]:
    slots = vars(sm) if hasattr(sm, "__dict__") else {}
    missing = [s for s in ("i", "p", "x", "Dim", "Dimnames") if s not in slots]
    if missing:
        kind = getattr(sm, "class", None) if slots else type(sm).__name__
        raise InputError(f"{path}: object '{OBJECT}' is not a dgCMatrix (class {_text(kind)!r}; missing slot(s) {', '.join(missing)})")
    shape = tuple(int(v) for v in np.asarray(slots["Dim"]).ravel())
    dimnames = slots["Dimnames"]
    if len(shape) != 2 or not isinstance(dimnames, (list, tuple)) or len(dimnames) != 2 or dimnames[0] is None or dimnames[1] is None:
        raise InputError(f"{path}: dgCMatrix '{OBJECT}' needs gene and cell names (Dimnames)")
    genes = [str(g) for g in np.asarray(dimnames[0]).ravel()]
    cells = [str(c) for c in np.asarray(dimnames[1]).ravel()]
    if shape[1] == 0 or not cells:
        raise InputError(f"{path}: no cells in '{OBJECT}'")
    if (len(genes), len(cells)) != shape:
        raise InputError(f"{path}: Dimnames ({len(genes)} x {len(cells)}) do not match Dim {shape}")
    if len(set(cells)) != len(cells):
        raise InputError(f"{path}: duplicated cell barcodes in '{OBJECT}'")
    try:
        matrix = sp.csc_matrix(
            (
                np.asarray(slots["x"], dtype=np.float64).ravel(),
                np.asarray(slots["i"], dtype=np.int64).ravel(),
                np.asarray(slots["p"], dtype=np.int64).ravel(),
            ),
            shape=shape,
        )
        matrix.check_format(full_check=True)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: inconsistent dgCMatrix slots ({exc})") from None
    return matrix, genes, cells


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(str(v) for v in np.asarray(value).ravel())
    return str(value)


def parse_panglaodb(rdata_paths: str | os.PathLike | Sequence[str | os.PathLike], tissue: str = "normal") -> ad.AnnData:
    """PanglaoDB human samples as one AnnData in the standard contract.

    `rdata_paths`: ``SRA..._SRS....sparse.RData`` files. obs: `tissue`
    (= `tissue`, 'normal' for PanglaoDB) and `sample` (the file's
    SRA_SRS id); obs_names ``<sample>:<barcode>``; var_names = the symbol part
    of PanglaoDB's ``<symbol>_<Ensembl id>`` names (duplicates summed; the ids
    in ``var['ensembl_id']``, first sample's ids), the union over samples. Raw counts, float32 CSR.
    """
    paths = [rdata_paths] if isinstance(rdata_paths, (str, os.PathLike)) else list(rdata_paths)
    if not paths:
        raise InputError("PanglaoDB: no .sparse.RData files given")
    samples = [read_panglaodb_sample(p, tissue) for p in paths]
    names = [a.obs["sample"].iloc[0] for a in samples]
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()][0]
        raise InputError(f"PanglaoDB: sample '{dup}' is given twice")
    scales = {a.uns["count_scale"] for a in samples}
    ensembl: dict[str, str] = {}
    for a in samples:  # ids may differ in version between samples: keep the first seen per symbol
        for symbol, ids in zip(a.var_names, a.var["ensembl_id"]):
            ensembl.setdefault(symbol, ids)
        a.var = a.var.drop(columns="ensembl_id")
    adata = concat_samples(samples)
    adata.var["ensembl_id"] = [ensembl.get(g, "") for g in adata.var_names]
    categorical_obs(adata, ("tissue", "sample"))
    validate_dataset(adata, "PanglaoDB", required_obs=("tissue", "sample"))
    describe_real(
        adata,
        "panglaodb_human",
        *corpus_scale(scales),
        source="PanglaoDB (Franzén et al. 2019) SRA..._SRS....sparse.RData, dgCMatrix 'sm'",
        n_samples=len(samples),
    )
    return adata


def sample_accessions(name: str) -> tuple[str, ...]:
    """The SRA accessions in a PanglaoDB sample name (``SRA553822_SRS2119548``, with or without
    ``.sparse.RData``): (submission, sample), (submission,) for a one-sample study, () for any other name."""
    name = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    match = SAMPLE_NAME.match(name)
    if match is None:
        return ()
    return (match["sra"], match["srs"]) if match["srs"] else (match["sra"],)


def read_panglaodb_sample_list(path: str | os.PathLike) -> pd.DataFrame:
    """PanglaoDB's sample list (``metadata.txt``) as a table: the columns of SAMPLE_LIST_COLUMNS (text;
    a missing value is ""), `srs` "" for a one-sample study, and `sample`, the name its file carries
    (``SRA..._SRS...``). A row with a wrong number of fields, or without an SRA accession, is an error
    naming the file and line; so is a sample listed twice."""
    path = existing_file(path)
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, fields in enumerate(csv.reader(handle), start=1):
            if not fields:
                continue
            if len(fields) != len(SAMPLE_LIST_COLUMNS):
                raise InputError(
                    f"{path}:{number}: {len(fields)} fields, expected {len(SAMPLE_LIST_COLUMNS)} (PanglaoDB's metadata.txt: "
                    f"{', '.join(SAMPLE_LIST_COLUMNS)})"
                )
            row = ["" if value == NULL else value for value in fields]
            joined = SAMPLE_NAME.match(row[0])
            if joined is None:
                raise InputError(f"{path}:{number}: {fields[0]!r} is not an SRA submission accession (SRA/ERA/DRA + digits)")
            if row[1] == NOT_USED:
                row[0], row[1] = joined["sra"], joined["srs"] or ""  # "ERA846165_ERS1600395","notused": both in one field
            elif joined["srs"]:
                raise InputError(f"{path}:{number}: {fields[0]!r} holds a sample accession and the SRS field is {fields[1]!r}")
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(SAMPLE_LIST_COLUMNS))
    table["sample"] = [sra + (f"_{srs}" if srs else "") for sra, srs in zip(table["sra"], table["srs"])]
    duplicated = table["sample"].duplicated()
    if duplicated.any():
        raise InputError(f"{path}: sample {table.loc[duplicated, 'sample'].iloc[0]} is listed twice")
    return table
