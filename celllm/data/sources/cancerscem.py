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

import csv
import gzip
import io
import os
import re
from pathlib import Path
from typing import IO, Iterable, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.io import validate_dataset

SUFFIXES = (".counts.matrix.tsv.gz", ".counts.matrix.tsv")
TISSUE = "tumor"

# ----------------------------------------------------------------------------------------------
# shared helpers (used by the sibling parsers of this package)
# ----------------------------------------------------------------------------------------------


def existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path; InputError if it is not an existing file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a file, found a folder")
    return path


def open_text(path: str | os.PathLike | Path, fileobj: IO[bytes] | None = None) -> IO[str]:
    """Open a plain or gzip-compressed text file (decided by the magic bytes, not the name).

    With `fileobj` (a seekable binary stream, e.g. a tar member) that stream is
    read instead of `path`.
    """
    if fileobj is None:
        with open(path, "rb") as raw:
            head = raw.read(2)
        if head == b"\x1f\x8b":
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    head = fileobj.read(2)
    fileobj.seek(0)
    if head == b"\x1f\x8b":
        fileobj = gzip.GzipFile(fileobj=fileobj, mode="rb")
    return io.TextIOWrapper(fileobj, encoding="utf-8", newline="")


def split_line(line: str, sep: str) -> list[str]:
    """Split one text line on `sep`, honouring double quotes (R's write.table quotes names)."""
    return next(csv.reader([line.rstrip("\r\n")], delimiter=sep))


def read_gene_by_cell_table(path: str | os.PathLike, sep: str = "\t",
                            chunk_rows: int = 2000) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Read a text table with one row per gene and one column per cell.

    The first column holds gene names; the header holds cell names, with or
    without a leading field for the gene column (R's ``write.table`` leaves it
    out, pandas writes it). Returns ``(X, genes, cells)`` with X a float32 CSR
    cells x genes matrix. The table is read in chunks of `chunk_rows` genes and
    each chunk is made sparse at once, so a sample never exists as a dense
    cells x genes array. Raises InputError naming the file for every problem.
    """
    path = name = existing_file(path)
    kind = "tab" if sep == "\t" else repr(sep)
    try:
        with open_text(path) as fh:
            header_line = fh.readline()
            first_line = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not a readable text table ({type(exc).__name__}: {exc})") from None
    if not header_line.strip():
        raise InputError(f"{name}: empty file (expected a header of cell names)")
    header = split_line(header_line, sep)
    if not first_line.strip():
        raise InputError(f"{name}: no gene rows after the header")
    n_fields = len(split_line(first_line, sep))
    if n_fields == len(header) + 1:
        cells = header
    elif n_fields == len(header):
        cells = header[1:]
    else:
        raise InputError(f"{name}: the header has {len(header)} fields but the first gene row has {n_fields} "
                         f"(wrong separator? expected {kind}-separated genes x cells)")
    if not cells:
        raise InputError(f"{name}: no cells (the header names no cell columns)")
    if len(set(cells)) != len(cells):
        dup = pd.Index(cells)[pd.Index(cells).duplicated()][0]
        raise InputError(f"{name}: duplicated cell name '{dup}' in the header")

    blocks, genes = [], []
    try:
        with open_text(path) as fh:
            fh.readline()  # header, parsed above
            for chunk in pd.read_csv(fh, sep=sep, header=None, index_col=0, chunksize=chunk_rows,
                                     dtype={0: str}, keep_default_na=True, low_memory=False):
                if chunk.shape[1] != len(cells):
                    raise InputError(f"{name}: a gene row has {chunk.shape[1]} values for {len(cells)} cells")
                try:
                    values = chunk.to_numpy(dtype=np.float32)
                except (ValueError, TypeError):
                    bad = _first_non_numeric(chunk)
                    raise InputError(f"{name}: non-numeric expression value {bad!r} "
                                     f"(expected numbers in a genes x cells table)") from None
                blocks.append(sp.csr_matrix(values))
                genes.extend(chunk.index.tolist())
    except InputError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not a valid {kind}-separated table "
                         f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
    if any((not isinstance(g, str)) or not g.strip() for g in genes):
        raise InputError(f"{name}: a gene row has an empty gene name")
    X = sp.vstack(blocks, format="csr").T.tocsr()
    return X.astype(np.float32), genes, cells


def _first_non_numeric(frame: pd.DataFrame) -> str:
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][values.isna() & frame[column].notna()]
        if len(bad):
            return str(bad.iloc[0])
    return "?"


def sum_duplicate_genes(X: sp.csr_matrix, genes: Sequence[str]) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """Sum the columns of genes that share a name; returns (X, unique names, codes).

    `codes[j]` is the output column of input gene j. Symbols are the project's
    gene space (DESIGN.md), and two Ensembl genes with one symbol are one
    symbol there, so their counts are added rather than renamed 'X-1'.
    """
    codes, uniques = pd.factorize(pd.Index(list(genes), dtype=object))
    if len(uniques) == len(codes):
        return X, list(uniques), codes
    n = len(codes)
    merge = sp.csr_matrix((np.ones(n, dtype=X.dtype), (np.arange(n), codes)), shape=(n, len(uniques)))
    return (X @ merge).tocsr(), list(uniques), codes


def count_scale(X: sp.spmatrix) -> str:
    """'raw_counts' if every stored value is an integer, else 'unverified_non_integer'."""
    data = X.data
    if data.size and not np.all(np.isfinite(data)):
        return "unverified_non_integer"
    return "raw_counts" if np.all(data == np.round(data)) else "unverified_non_integer"


def concat_samples(adatas: Sequence[ad.AnnData]) -> ad.AnnData:
    """Concatenate per-sample AnnData over the union of genes (missing genes are zeros)."""
    if len(adatas) == 1:
        return adatas[0]
    merged = ad.concat(list(adatas), join="outer", merge="same", fill_value=0)
    merged.X = sp.csr_matrix(merged.X, dtype=np.float32)
    return merged


def sample_name(path: Path, suffixes: Iterable[str]) -> str:
    """File name without the first matching suffix."""
    name = path.name
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return re.sub(r"(\.gz)?$", "", name)


# ----------------------------------------------------------------------------------------------
# the CancerSCEM parser
# ----------------------------------------------------------------------------------------------


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
    adata.obs["tissue"] = pd.Categorical(adata.obs["tissue"].astype(str))
    adata.obs["sample"] = pd.Categorical(adata.obs["sample"].astype(str))
    validate_dataset(adata, "CancerSCEM", required_obs=("tissue", "sample"))
    adata.uns.clear()
    adata.uns.update(
        dataset="cancerscem",
        simulated=False,
        count_scale="raw_counts" if scales == {"raw_counts"} else "unverified_non_integer",
        value_scale="counts" if scales == {"raw_counts"} else "unverified",
        source="CancerSCEM (Zeng et al. 2022, NAR; https://ngdc.cncb.ac.cn/cancerscem): "
               "<sample>.counts.matrix.tsv.gz, genes x cells UMI counts",
        n_samples=len(samples),
    )
    return adata
