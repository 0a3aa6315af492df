"""Zheng68k: 10x Genomics "Fresh 68k PBMCs (Donor A)" with the FACS-based labels
of Zheng et al. 2017 ("Massively parallel digital transcriptional profiling
of single cells", Nat Commun 8:14049).

Source layout and where each fact comes from:

- Matrix: https://cf.10xgenomics.com/samples/cell-exp/1.1.0/fresh_68k_pbmc_donor_a/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz
  (the http://cf.10xgenomics.com/... form of this URL is listed by PARC's
  README and by a dataset registry in public code; 10x "cell-exp/1.1.0" =
  Cell Ranger 1.1, as 10XGenomics/single-cell-3prime-paper
  pbmc68k_analysis/README.md says of all the paper's data).
- Archive layout (Cell Ranger 1.1): ``filtered_matrices_mex/hg19/`` holding
  ``matrix.mtx`` (MatrixMarket coordinate, integer, genes x cells),
  ``genes.tsv`` (two tab-separated columns, no header: Ensembl id, symbol) and
  ``barcodes.tsv`` (one barcode per line, e.g. ``AAACATACACCCAA-1``). Seen in
  PARC's README (``./data/filtered_matrices_mex/hg19/`` with genes.tsv column
  1 = symbol) and in several public loaders; uncompressed files, unlike the
  ``.gz`` files of Cell Ranger >= 3 (those are accepted too, with
  ``features.tsv.gz``).
- Shape reported by public runs of this file: 68,579 cells x 32,738 genes,
  37,323,295 non-zeros; first barcodes AAACATACACCCAA-1, AAACATACCCCTCA-1.
- Labels: https://raw.githubusercontent.com/10XGenomics/single-cell-3prime-paper/master/pbmc68k_analysis/68k_pbmc_barcodes_annotation.tsv
  (URL listed in public code; the file is in the repository named above).
  Tab-separated with a header ``TSNE.1  TSNE.2  barcodes  celltype`` (header
  quoted in a public loader's comment; code reading it uses the ``barcodes``
  and ``celltype`` columns); 11 FACS-reference cell types such as
  "CD8+ Cytotoxic T", "CD4+/CD45RA+/CD25- Naive T", "CD56+ NK" (the names
  used in main_process_68k_pbmc.R of that repository).

Not verified here (no download possible): that every matrix barcode appears in
the annotation file (public code matches them one to one); the parser drops
unannotated cells with a warning either way.
"""

from __future__ import annotations

import logging
import os
import tarfile
from pathlib import Path
from typing import IO

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.ledger import Ledger
from ingest.sources._common import Expansion, describe_real, existing_file, gunzipped, open_text, read_table, tar_members

ANNOTATION_COLUMNS = ("barcodes", "celltype")
MATRIX_NAMES = ("matrix.mtx", "matrix.mtx.gz")
GENE_NAMES = ("genes.tsv", "genes.tsv.gz", "features.tsv.gz", "features.tsv")
BARCODE_NAMES = ("barcodes.tsv", "barcodes.tsv.gz")

log = logging.getLogger(__name__)


def parse_zheng68k(matrix_dir: str | os.PathLike, annotation_tsv: str | os.PathLike, ledger: Ledger | None = None) -> ad.AnnData:
    """Zheng68k as an AnnData in the standard contract.

    `matrix_dir`: the folder with matrix.mtx, genes.tsv and barcodes.tsv
    (``filtered_matrices_mex/hg19``), any folder above it holding exactly one
    such folder, or the downloaded ``.tar.gz`` itself (read in place, nothing
    is extracted). `annotation_tsv`: ``68k_pbmc_barcodes_annotation.tsv``.

    Returns raw UMI counts (float32 CSR, cells x genes), var_names = gene
    symbols from genes.tsv (duplicate symbols summed; their Ensembl ids, ';'
    joined, in ``var['ensembl_id']``), obs ``cell_type`` from the annotation.
    Matrix cells missing from the annotation are dropped (step labels of `ledger`);
    annotation barcodes missing from the matrix are ignored.
    """
    ledger = ledger if ledger is not None else Ledger("zheng68k")
    annotation = read_annotation(annotation_tsv)
    X, ensembl, symbols, barcodes, where = read_10x_matrix(matrix_dir)

    labelled = pd.Index(barcodes).isin(annotation.index)
    n_missing = int((~labelled).sum())
    if not labelled.any():
        raise InputError(
            f"{annotation_tsv}: none of the {len(barcodes)} barcodes of {where} is annotated "
            f"(e.g. matrix '{barcodes[0]}' vs annotation '{annotation.index[0]}')"
        )
    ledger.record(
        "labels",
        "cells",
        len(barcodes),
        len(barcodes) - n_missing,
        f"cells of {where} without a cell type in {Path(annotation_tsv).name}",
        [b for b, keep in zip(barcodes, labelled) if not keep],
    )
    if n_missing:
        X = X[np.flatnonzero(labelled)]
        barcodes = [b for b, keep in zip(barcodes, labelled) if keep]

    X, names, codes = sum_duplicate_genes(X, symbols)
    ensembl_ids = pd.Series(ensembl).groupby(codes).agg(";".join).to_numpy()
    obs = pd.DataFrame({"cell_type": pd.Categorical(annotation.loc[barcodes].to_numpy())}, index=pd.Index(barcodes, dtype=object))
    var = pd.DataFrame({"ensembl_id": ensembl_ids}, index=pd.Index(names, dtype=object))
    adata = ad.AnnData(X=X, obs=obs, var=var)
    validate_dataset(adata, str(where), required_obs=("cell_type",))
    describe_real(
        adata,
        "zheng68k",
        "raw_counts",
        "counts",
        source="10x Genomics fresh_68k_pbmc_donor_a filtered gene-barcode matrices (Cell Ranger 1.1) + "
        "10XGenomics/single-cell-3prime-paper pbmc68k_analysis/68k_pbmc_barcodes_annotation.tsv",
        n_unannotated_dropped=n_missing,
        n_duplicate_symbols_summed=len(symbols) - len(names),
    )
    return adata


def read_annotation(path: str | os.PathLike) -> pd.Series:
    """barcode -> cell type from 68k_pbmc_barcodes_annotation.tsv."""
    path = existing_file(path)
    table = read_table(path, "annotation table (TSNE.1, TSNE.2, barcodes, celltype)", ANNOTATION_COLUMNS, sep="\t")
    if table.empty:
        raise InputError(f"{path}: no annotated cells")
    empty = (table["barcodes"].str.strip() == "") | (table["celltype"].str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + 2
        raise InputError(f"{path}: empty barcode or cell type on line {row}")
    if table["barcodes"].duplicated().any():
        dup = table.loc[table["barcodes"].duplicated(), "barcodes"].iloc[0]
        raise InputError(f"{path}: barcode '{dup}' is annotated twice")
    return pd.Series(table["celltype"].to_numpy(), index=pd.Index(table["barcodes"].to_numpy(), dtype=object))


def read_10x_matrix(source: str | os.PathLike) -> tuple[sp.csr_matrix, list[str], list[str], list[str], str]:
    """(X cells x genes CSR float32, ensembl ids, symbols, barcodes, description of where it was read)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: not found (expected the 10x matrix folder or the downloaded .tar.gz)")
    if source.is_file():
        try:
            is_tar = tarfile.is_tarfile(source)
        except OSError:
            is_tar = False
        if not is_tar:
            raise InputError(f"{source}: not a folder and not a tar archive of a 10x matrix")
        try:
            with tarfile.open(source, "r:*") as archive:
                expansion = Expansion(source)  # the unpacked tar and any .gz in it, under one cap
                members = {Path(m.name): m for m in tar_members(archive, source, expansion) if m.isfile()}
                folder = _matrix_folder(list(members), source)
                where = f"{source}:{folder.as_posix()}"

                def opener(name: str) -> IO[bytes]:
                    member = archive.extractfile(members[folder / name])
                    assert member is not None
                    return member

                names = {p.name for p in members if p.parent == folder}
                return (*_read_parts(names, opener, where, expansion), where)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"{source}: unreadable tar archive ({type(exc).__name__}: {exc})") from None
    files = [p.relative_to(source) for p in source.rglob("*") if p.is_file()]
    folder = _matrix_folder(files, source)
    where = str(source / folder)
    names = {p.name for p in (source / folder).iterdir()}
    return (*_read_parts(names, lambda name: open(source / folder / name, "rb"), where, Expansion(source / folder)), where)


def _matrix_folder(files: list[Path], source: Path) -> Path:
    folders = sorted({f.parent for f in files if f.name in MATRIX_NAMES})
    if not folders:
        raise InputError(f"{source}: no matrix.mtx found (expected the 10x layout filtered_matrices_mex/hg19/matrix.mtx)")
    if len(folders) > 1:
        raise InputError(f"{source}: {len(folders)} matrix.mtx folders found ({', '.join(map(str, folders[:3]))}); give the one to read")
    return folders[0]


def _read_parts(names: set[str], opener, where: str, expansion: Expansion):
    def pick(options: tuple[str, ...], what: str) -> str:
        for option in options:
            if option in names:
                return option
        raise InputError(f"{where}: no {what} beside matrix.mtx (expected one of {', '.join(options)})")

    matrix_name, genes_name, barcodes_name = (
        pick(MATRIX_NAMES, "matrix"),
        pick(GENE_NAMES, "gene list"),
        pick(BARCODE_NAMES, "barcode list"),
    )
    with opener(genes_name) as raw, open_text(f"{where}/{genes_name}", raw, expansion) as fh:
        genes = _read_tsv_lines(fh, f"{where}/{genes_name}")
    if any(len(row) < 2 for row in genes):
        raise InputError(f"{where}/{genes_name}: expected two tab-separated columns (Ensembl id, gene symbol) per line")
    ensembl = [row[0] for row in genes]
    symbols = [row[1] for row in genes]
    with opener(barcodes_name) as raw, open_text(f"{where}/{barcodes_name}", raw, expansion) as fh:
        barcodes = [row[0] for row in _read_tsv_lines(fh, f"{where}/{barcodes_name}")]
    if not barcodes:
        raise InputError(f"{where}/{barcodes_name}: no cells")
    if len(set(barcodes)) != len(barcodes):
        raise InputError(f"{where}/{barcodes_name}: duplicated barcodes")
    with opener(matrix_name) as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gunzipped(raw, expansion, f"{where}/{matrix_name}") if head == b"\x1f\x8b" else raw
        try:
            matrix = scipy.io.mmread(stream)
        except InputError:
            raise
        except (ValueError, OSError, EOFError, IndexError) as exc:
            raise InputError(f"{where}/{matrix_name}: not a MatrixMarket file ({type(exc).__name__}: {exc})") from None
    if not sp.issparse(matrix):
        matrix = sp.coo_matrix(matrix)
    if matrix.shape != (len(genes), len(barcodes)):
        raise InputError(
            f"{where}/{matrix_name}: matrix is {matrix.shape[0]} x {matrix.shape[1]} but there are "
            f"{len(genes)} genes and {len(barcodes)} barcodes"
        )
    X = sp.csr_matrix(matrix.T, dtype=np.float32)
    X.sum_duplicates()
    if X.nnz and not np.isfinite(X.data).all():
        raise InputError(f"{where}/{matrix_name}: NaN or infinite values in the count matrix")
    if X.nnz and X.data.min() < 0:
        raise InputError(f"{where}/{matrix_name}: negative values in the count matrix")
    X.eliminate_zeros()
    return X, ensembl, symbols, barcodes


def _read_tsv_lines(fh, name: str) -> list[list[str]]:
    try:
        rows = [line.rstrip("\r\n").split("\t") for line in fh if line.strip()]
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{name}: unreadable ({type(exc).__name__})") from None
    if not rows:
        raise InputError(f"{name}: empty file")
    if rows[0][0].startswith("\ufeff"):  # a byte-order mark would become part of the first gene or barcode
        rows[0][0] = rows[0][0][1:]
        log.warning("%s: stripped a byte-order mark", name)
    return rows
