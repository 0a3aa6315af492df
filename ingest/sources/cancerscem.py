"""CancerSCEM tumour samples (Zeng et al. 2022, NAR, "CancerSCEM: a database of
single-cell expression map across various human cancers"): per-sample count
matrices, the tumour half of CellLM's pretraining corpus.

Source layout (what could be established, and from where):

- Portal: https://ngdc.cncb.ac.cn/cancerscem (the "index", "search" and
  "browse" pages are cited by public code, e.g. an R script citing
  "https://ngdc.cncb.ac.cn/cancerscem/search" for its immune-checkpoint list,
  and a GNN challenge README describing the data as "UMI count matrices in
  standard .tsv format", one per dataset).
- File per sample: ``<SampleID>.counts.matrix.tsv.gz``. Two independent
  public pipelines read this name: a scanpy pipeline that detects the
  "cancerSCEM format" by files ending in ``counts.matrix.tsv.gz`` and reads
  each with ``pd.read_csv(path, sep="\\t", index_col=0)`` followed by a
  transpose, with the comment "rows are genes, columns are cells"; and the
  CancerSCEM2 R pipeline of its maintainers' collaborators, which globs
  ``counts/*.tsv`` with sample files named like ``AML-029-27-1E.counts.matrix.tsv``
  (found with the project's code search; the repositories were not named by
  the index, so they cannot be cited more precisely).
- Content: tab-separated, one row per gene (gene symbol in the first column),
  one column per cell (cell barcode in the header), raw UMI counts.

What is NOT verified (no copy of a real file could be obtained; the machine
has no internet):

- the exact download URL pattern of a sample file on ngdc.cncb.ac.cn;
- whether the header row carries a name for the gene column (R's
  ``write.table`` omits it, pandas' ``to_csv`` writes one): both are accepted;
- whether every sample holds integer UMI counts (samples from full-length
  protocols may hold other values): the parser records what it sees in
  ``.uns["count_scale"]`` ("raw_counts" if every value is an integer,
  otherwise "unverified_non_integer") instead of assuming;
- whether CancerSCEM 1.0 (208 samples, 638,341 cells, the version CellLM
  used) and CancerSCEM 2.0 share this layout.

This module also holds the small text-matrix helpers that the sibling parsers
(GSE117872, GSE149383, Zheng68k, Baron, PanglaoDB) share: reading a
genes x cells text table into a CSR cells x genes matrix without a dense
copy, opening plain or gzip files, and summing duplicate gene symbols.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anndata as ad
import pandas as pd

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.sources._common import (
    categorical_obs,
    concat_samples,
    corpus_scale,
    count_scale,
    describe_real,
    existing_file,
    read_gene_by_cell_table,
    sample_name,
)

SUFFIXES = (".counts.matrix.tsv.gz", ".counts.matrix.tsv")
TISSUE = "tumor"


def read_cancerscem_sample(path: str | os.PathLike) -> ad.AnnData:
    """One CancerSCEM sample file as an AnnData (obs `tissue`='tumor', `sample`)."""
    path = existing_file(path)
    if not path.name.endswith(SUFFIXES):
        raise InputError(f"{path}: expected a CancerSCEM sample file named <sample>.counts.matrix.tsv[.gz]")
    X, genes, cells = read_gene_by_cell_table(path, sep="\t")
    X, genes, _ = sum_duplicate_genes(X, genes)
    sample = sample_name(path, SUFFIXES)
    obs = pd.DataFrame({"tissue": TISSUE, "sample": sample}, index=pd.Index([f"{sample}:{c}" for c in cells]))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    validate_dataset(adata, str(path), required_obs=("tissue", "sample"))
    adata.uns["count_scale"] = count_scale(adata.X)
    return adata


def parse_cancerscem(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> ad.AnnData:
    """CancerSCEM tumour samples as one AnnData in the standard contract.

    `paths`: one or more ``<SampleID>.counts.matrix.tsv[.gz]`` files (genes x
    cells, tab-separated). obs: `tissue` = 'tumor', `sample` = the sample id
    from the file name; obs_names are ``<sample>:<barcode>``; var_names are the
    files' gene symbols (duplicates summed), the union over samples.
    ``.uns["count_scale"]`` is 'raw_counts' only if every sample holds integers.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise InputError("CancerSCEM: no sample files given")
    samples = [read_cancerscem_sample(p) for p in paths]
    names = [a.obs["sample"].iloc[0] for a in samples]
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()][0]
        raise InputError(f"CancerSCEM: sample '{dup}' is given twice")
    scales = {a.uns["count_scale"] for a in samples}
    adata = concat_samples(samples)
    categorical_obs(adata, ("tissue", "sample"))
    validate_dataset(adata, "CancerSCEM", required_obs=("tissue", "sample"))
    describe_real(
        adata,
        "cancerscem",
        *corpus_scale(scales),
        source="CancerSCEM (Zeng et al. 2022, NAR; https://ngdc.cncb.ac.cn/cancerscem): "
        "<sample>.counts.matrix.tsv.gz, genes x cells UMI counts",
        n_samples=len(samples),
    )
    return adata
