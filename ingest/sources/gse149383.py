"""GSE149383 (Aissa et al. 2021, "Single-cell transcriptional changes associated
with drug tolerance and response to combination therapies in cancer", Nat
Commun 12:1628; PC9 lung adenocarcinoma cells under erlotinib): single-cell
drug-sensitivity labels.

Two layouts are read:

1. The one CellLM's numbers come from: scDEAL's processed pair
   ``erl_total_data_2K.csv`` + ``erl_total_2K_meta.csv`` (1,496 cells, the
   count in scDEAL's README table "Data 5 ... GSE149383 ... 1496" and in
   CellLM's paper). scDEAL ships them in its data archive (scDEAL.zip on
   OneDrive, README of OSU-BMBL/scDEAL); ChatCell's README points to
   OSU-BMBL/scDEAL as the source of this dataset, not GEO.
   - ``erl_total_data_2K.csv``: comma-separated, one row per gene (names in
     the first column), one column per cell (ChatCell GSE149383_to_json.py
     reads it with ``pd.read_csv`` and transposes it, taking row 0 of the
     transpose as the gene names; scDEAL's read_sc_file transposes it when
     rows outnumber columns).
   - ``erl_total_2K_meta.csv``: comma-separated, no header, one row per cell
     in the order of the expression columns, cell id first (scDEAL utils.py
     ``process_149383``: ``pd.read_csv(file, header=None, index_col=0)`` and
     the labels assigned by position; ChatCell reads column 3 as the target
     "sensitive"/"resistant").
   - Label rule (scDEAL ``process_149383``): a cell is resistant if its label
     field contains "res", else sensitive. Here the label column is the first
     column after the id whose every value contains "res" or "sens"
     (case-insensitive), or the one given as `label_column`; a value that
     contains neither is an error, not silently "sensitive".
   - Not verified: the exact column layout of the meta file (scDEAL's code
     reads column 1, ChatCell's column 3; both are accepted), what "2K"
     means (possibly 2,000 selected genes) and the value scale (recorded as
     seen: "counts" if every value is an integer, else "unverified").

2. The GEO supplementary files: ``GSE149383_RAW.tar`` at
   https://ftp.ncbi.nlm.nih.gov/geo/series/GSE149nnn/GSE149383/suppl/GSE149383_RAW.tar
   (URL used by several public pipelines), a SuperSeries whose per-sample
   Drop-seq matrices are tab-separated genes x cells text files (read with
   ``pd.read_csv(file, sep="\\t", index_col=0)`` by sanderlab/scPerturb
   dataset_processing, process_GSE149383, which lists the samples: e.g. the
   erlotinib time course GSM3972657-GSM3972662 = PC9 day 0, 1, 2, 4, 9, 11,
   subseries GSE134839). `parse_gse149383_samples` takes such files with the
   day of each; rule: day 0 (drug-naive PC9) = sensitive, erlotinib-treated
   cells that survived >= `persister_from_day` days (drug-tolerant persisters)
   = resistant. This is the "drug-naive vs persister" reading of the paper;
   no public code was found that builds binary labels from the GEO files, so
   which days count as resistant is a choice, recorded in ``.uns``.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.ledger import Ledger
from ingest.sources._common import (
    concat_samples,
    corpus_scale,
    count_scale,
    describe_real,
    existing_file,
    open_text,
    read_gene_by_cell_table,
)


def _response(value: str) -> str | None:
    text = str(value).strip().lower()
    if "res" in text:
        return "resistant"
    if "sens" in text:
        return "sensitive"
    return None


def parse_gse149383(
    expression_csv: str | os.PathLike, meta_csv: str | os.PathLike, label_column: int | None = None, ledger: Ledger | None = None
) -> ad.AnnData:
    """GSE149383 from scDEAL's ``erl_total_data_2K.csv`` + ``erl_total_2K_meta.csv``.

    `label_column`: the 0-based column of the meta file holding the labels
    (default: the first column after the id whose values all read as
    sensitive/resistant). Cells are matched by id; if the meta ids do not name
    the expression columns but the counts agree, they are matched by position
    (as scDEAL and ChatCell do) with a warning.
    """
    X, genes, cells = read_gene_by_cell_table(expression_csv, sep=",")
    meta = _read_meta(meta_csv, cells, label_column)
    ids = meta[0].astype(str)
    if set(cells) <= set(ids):
        labels_by_id = dict(zip(ids, meta["response"]))
        labels = [labels_by_id[c] for c in cells]
        if len(ids) > len(cells):
            warnings.warn(f"{meta_csv}: {len(ids) - len(cells)} rows name no cell of {expression_csv}; ignored", stacklevel=2)
        matched = "id"
    elif len(ids) == len(cells):
        warnings.warn(
            f"{meta_csv}: cell ids do not match the columns of {expression_csv}; matched by position (as scDEAL does)", stacklevel=2
        )
        labels = meta["response"].tolist()
        matched = "position"
    else:
        missing = next(c for c in cells if c not in set(ids))
        raise InputError(f"{meta_csv}: {len(ids)} rows for {len(cells)} cells of {expression_csv}, and cell '{missing}' is not listed")
    (ledger if ledger is not None else Ledger("gse149383")).record(
        "labels", "cells", len(cells), len(cells), f"every cell labelled from {Path(meta_csv).name}, matched by {matched}"
    )
    X, genes, _ = sum_duplicate_genes(X, genes)
    obs = pd.DataFrame({"response": pd.Categorical(labels, categories=["sensitive", "resistant"])}, index=pd.Index(cells, dtype=object))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    validate_dataset(adata, str(expression_csv), required_obs=("response",))
    scale = count_scale(adata.X)
    describe_real(
        adata,
        "gse149383",
        scale,
        "counts" if scale == "raw_counts" else "unverified",
        drug="erlotinib",
        label_rule="meta label field contains 'res' -> resistant, 'sens' -> sensitive (scDEAL utils.process_149383)",
        meta_matched_by=matched,
        source="scDEAL data archive: GSE149383/erl_total_data_2K.csv + erl_total_2K_meta.csv (Aissa et al. 2021)",
    )
    return adata


def _read_meta(path: str | os.PathLike, cells: list[str], label_column: int | None = None) -> pd.DataFrame:
    path = existing_file(path)
    try:
        with open_text(path) as fh:
            rows = [row for row in csv.reader(fh) if row]
    except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a comma-separated table ({type(exc).__name__})") from None
    if not rows:
        raise InputError(f"{path}: no cells")
    width = max(len(r) for r in rows)
    if width < 2:
        raise InputError(f"{path}: expected a cell id and a sensitive/resistant label per row")
    table = pd.DataFrame([r + [""] * (width - len(r)) for r in rows])
    if label_column is None:
        candidates = [c for c in range(1, width) if table[c].map(_response).notna().all()]
        if not candidates:
            raise InputError(f"{path}: no column holds sensitive/resistant labels for every cell (first row: {rows[0]!r})")
        label_column = candidates[0]
    elif not 1 <= label_column < width:
        raise InputError(f"{path}: label_column {label_column} is outside the {width} columns")
    responses = table[label_column].map(_response)
    if responses.isna().any():
        bad = table.loc[responses.isna(), label_column].iloc[0]
        raise InputError(f"{path}: label {bad!r} in column {label_column} is neither sensitive nor resistant")
    if table[0].duplicated().any():
        raise InputError(f"{path}: cell id '{table.loc[table[0].duplicated(), 0].iloc[0]}' is listed twice")
    table["response"] = responses
    return table


def parse_gse149383_samples(samples: Mapping[str | os.PathLike, int], persister_from_day: int = 1) -> ad.AnnData:
    """GSE149383 from GEO per-sample Drop-seq matrices (genes x cells, tab-separated, plain or .gz).

    `samples`: file -> days of erlotinib (0 = drug-naive). Day 0 cells are
    'sensitive', cells after >= `persister_from_day` days are 'resistant'
    (drug-tolerant persisters); samples in between are refused. obs:
    ``response``, ``sample``, ``day``.
    """
    if not samples:
        raise InputError("GSE149383: no sample files given")
    parts, scales = [], set()
    for path, day in samples.items():
        path = existing_file(path)
        if not isinstance(day, (int, np.integer)) or day < 0:
            raise InputError(f"{path}: day must be a non-negative integer, got {day!r}")
        if 0 < day < persister_from_day:
            raise InputError(
                f"{path}: day {day} is neither drug-naive (0) nor >= persister_from_day "
                f"({persister_from_day}); leave it out or lower persister_from_day"
            )
        X, genes, cells = read_gene_by_cell_table(path, sep="\t")
        X, genes, _ = sum_duplicate_genes(X, genes)
        sample = path.name.split(".")[0]
        obs = pd.DataFrame(
            {"response": "sensitive" if day == 0 else "resistant", "sample": sample, "day": int(day)},
            index=pd.Index([f"{sample}:{c}" for c in cells], dtype=object),
        )
        part = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
        validate_dataset(part, str(path), required_obs=("response",))
        scales.add(count_scale(part.X))
        parts.append(part)
    adata = concat_samples(parts)
    adata.obs["response"] = pd.Categorical(adata.obs["response"], categories=["sensitive", "resistant"])
    adata.obs["sample"] = pd.Categorical(adata.obs["sample"].astype(str))
    validate_dataset(adata, "GSE149383", required_obs=("response",))
    describe_real(
        adata,
        "gse149383",
        *corpus_scale(scales),
        drug="erlotinib",
        label_rule=f"day 0 (drug-naive) -> sensitive; erlotinib day >= {persister_from_day} (persisters) -> resistant",
        source="GEO GSE149383_RAW.tar per-sample Drop-seq matrices (Aissa et al. 2021)",
    )
    return adata
