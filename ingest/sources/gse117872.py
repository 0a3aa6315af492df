"""GSE117872 (Sharma et al. 2018, "Longitudinal single-cell RNA sequencing of
patient-derived primary and metastatic head and neck cancer cells", oral
squamous cell carcinoma lines HN120/HN137 under cisplatin): single-cell
drug-sensitivity labels.

Source layout and where each fact comes from:

- GEO supplementary files of GSE117872 (series page
  https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE117872, listed as the
  source by the ChatCell README; GEO serves supplementary files gzip-compressed
  under https://ftp.ncbi.nlm.nih.gov/geo/series/GSE117nnn/GSE117872/suppl/):
  ``GSE117872_good_Data_TPM.txt`` and ``GSE117872_good_Data_cellinfo.txt``
  (the names scDEAL reads: OSU-BMBL/scDEAL scmodel.py ``DATA_MAP`` and
  utils.py ``process_117872``; ChatCell's GSE117872_to_json.py reads the same
  pair). The ``.gz`` form is accepted as well.
- ``..._TPM.txt``: tab-separated, one row per gene (symbol first), one column
  per cell (ids such as ``RHH2177``, the ids in scDEAL's
  FigS8_GSE117872_HN120_score.csv). scDEAL reads it with
  ``pd.read_csv(sep="\\t", index_col=0)`` and transposes it (genes are rows);
  ChatCell reads it without index_col and transposes it, which works when the
  header has no field for the gene column (R's write.table); both header forms
  are accepted. Values are TPM (file name; scDEAL normalises them further),
  not counts: recorded in ``.uns["value_scale"] = "tpm"``.
- ``..._cellinfo.txt``: tab-separated with a header, its columns (a real pandas printout of
  the file read by scDEAL, ``casestudy/analysis_tarined_anndata.ipynb`` of OSU-BMBL/scDEAL):
  ``groups`` (the cell id, scDEAL's index to align with the TPM columns), ``cell_color``
  (HN120P, HN120PCR, HN120M, HN120MCR, HN137P, ..., HN148P, HN148M), ``patient_id``,
  ``origin`` (HN120 / HN137 / HN148), ``drug_status``, ``cluster`` (Sensitive / Resistant /
  Holiday), ``pca_clusters``, ``pagoda_clusters`` and an empty, unnamed last column
  (pandas' ``Unnamed: 8``), which is dropped here.

Label rule (scDEAL utils.py ``process_117872``: ``'Resistant' if
row.find("Resistant") != -1 else 'Sensitive'`` over ``cluster``; ChatCell maps
"Holiday" to "sensitive" explicitly): ``cluster`` Resistant -> resistant;
Sensitive and Holiday (drug-holiday cells) -> sensitive. Any other value is
an error here rather than silently 'sensitive'.

Which cells: the file holds three lines (HN120, HN137, HN148). scDEAL, whose data
CellLM's drug-sensitivity task follows, selects one origin per run
(``adata.obs['origin'] == origin`` in ``process_117872``; runs ``GSE117872_HN120`` and
``GSE117872_HN137``, its older ``scmodel.py`` defaulting to HN137) and reports 548 cells
for "Data 1&2". After its ``min_genes=200`` filter a public table of the same data
(SCREP's README) counts HN120 at 172 + 346 = 518 cells and HN137 at 150 + 388 = 538: so
548 is one origin before filtering, not the whole file and not both lines together,
and HN137 (10 cells filtered) fits better than HN120 (30). The catalog therefore makes
one dataset per origin (``gse117872_hn137``, ``gse117872_hn120``), selected by the
``origin`` column; the count of each is in its ledger. Not verified on the real file,
which could not be read here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.ledger import Ledger
from ingest.sources._common import describe_real, existing_file, read_gene_by_cell_table, read_table

ID_COLUMN = "groups"
LABEL_COLUMN = "cluster"
LABELS = {"resistant": "resistant", "sensitive": "sensitive", "holiday": "sensitive"}


def parse_gse117872(
    tpm_path: str | os.PathLike, cellinfo_path: str | os.PathLike, origins: Sequence[str] | None = None, ledger: Ledger | None = None
) -> ad.AnnData:
    """GSE117872 as an AnnData in the standard contract.

    `tpm_path`: ``GSE117872_good_Data_TPM.txt[.gz]``; `cellinfo_path`:
    ``GSE117872_good_Data_cellinfo.txt[.gz]``; `origins`: keep only cells
    whose ``origin`` is one of these (e.g. ``["HN120"]``, as scDEAL does),
    default every cell.

    Returns TPM values (float32 CSR; ``.uns["value_scale"] = "tpm"``), obs
    ``response`` in {sensitive, resistant} plus the cellinfo columns; cells of
    the TPM file without cell information are dropped (step labels of `ledger`), and
    so are the cells of other origins (step selection).
    """
    ledger = ledger if ledger is not None else Ledger("gse117872")
    info = read_cellinfo(cellinfo_path)
    X, genes, cells = read_gene_by_cell_table(tpm_path, sep="\t")
    known = pd.Index(cells).isin(info.index)
    if not known.any():
        raise InputError(
            f"{cellinfo_path}: none of the {len(cells)} cells of {tpm_path} is listed in column "
            f"'{ID_COLUMN}' (e.g. '{cells[0]}' vs '{info.index[0]}')"
        )
    ledger.record(
        "labels",
        "cells",
        len(cells),
        int(known.sum()),
        f"cells of {Path(tpm_path).name} without a row in {Path(cellinfo_path).name}",
        [c for c, k in zip(cells, known) if not k],
    )
    keep = np.flatnonzero(known)
    obs = info.loc[[cells[i] for i in keep]].copy()
    if origins is not None:
        if "origin" not in obs.columns:
            raise InputError(f"{cellinfo_path}: no 'origin' column to select origins {list(origins)} from")
        chosen = obs["origin"].isin(list(origins)).to_numpy()
        if not chosen.any():
            raise InputError(
                f"{cellinfo_path}: no cell has origin in {list(origins)} "
                f"(origins present: {', '.join(sorted(obs['origin'].dropna().unique()))})"
            )
        counts = obs["origin"].value_counts()
        ledger.record(
            "selection",
            "cells",
            len(obs),
            int(chosen.sum()),
            f"origin {', '.join(origins)} kept (" + ", ".join(f"{o}: {n}" for o, n in counts.items()) + ")",
            expected=True,
        )
        keep, obs = keep[chosen], obs[chosen]
    X, genes, _ = sum_duplicate_genes(X[keep], genes)
    obs.index = pd.Index(obs.index.astype(str), dtype=object)
    for column in obs.columns:
        obs[column] = pd.Categorical(obs[column].astype(str))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    validate_dataset(adata, str(tpm_path), required_obs=("response",))
    describe_real(
        adata,
        "gse117872",
        "tpm",
        "tpm",
        drug="cisplatin",
        label_rule="cellinfo 'cluster': Resistant -> resistant; Sensitive, Holiday -> sensitive (scDEAL utils.process_117872)",
        source="GEO GSE117872 GSE117872_good_Data_TPM.txt + GSE117872_good_Data_cellinfo.txt (Sharma et al. 2018)",
        origins=list(origins) if origins is not None else "all",
    )
    return adata


def read_cellinfo(path: str | os.PathLike) -> pd.DataFrame:
    """The cell-information table, indexed by cell id, with a `response` column added."""
    path = existing_file(path)
    table = read_table(path, "GSE117872 cell-information table", (ID_COLUMN, LABEL_COLUMN), sep="\t")
    unnamed = [c for c in table.columns if (c == "" or c.startswith("Unnamed:")) and (table[c].str.strip() == "").all()]
    table = table.drop(columns=unnamed)  # the real file ends every line with an empty field
    if table.empty:
        raise InputError(f"{path}: no cells")
    if (table[ID_COLUMN].str.strip() == "").any() or table[ID_COLUMN].duplicated().any():
        raise InputError(f"{path}: cell ids in column '{ID_COLUMN}' are missing or repeated")
    labels = table[LABEL_COLUMN].str.strip().str.lower().map(LABELS)
    if labels.isna().any():
        bad = table.loc[labels.isna(), LABEL_COLUMN].iloc[0]
        raise InputError(f"{path}: unknown '{LABEL_COLUMN}' value {bad!r} (expected Sensitive, Resistant or Holiday)")
    table["response"] = labels
    return table.set_index(ID_COLUMN)
