"""Baron et al. 2016 human pancreas (GEO GSE84133, inDrop UMI counts).

Source layout and where each fact comes from:

- Download: https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSE84133&format=file
  = ``GSE84133_RAW.tar`` (the URL the Bioconductor scRNAseq package uses,
  LTLA/scRNAseq inst/scripts/make-baron-pancreas-data.Rmd).
- Human samples inside the tar: ``GSM2230757_human1_umifm_counts.csv.gz``,
  ``GSM2230758_human2_...``, ``GSM2230759_human3_...``,
  ``GSM2230760_human4_umifm_counts.csv.gz``; the mouse ones are
  ``GSM2230761_mouse1_...`` and ``GSM2230762_mouse2_...`` (same script).
- Each file: comma-separated, one row per cell. Header: an empty first field
  (the row index), then ``barcode``, ``assigned_cluster``, then one column per
  gene symbol; rows start with the cell id (e.g. ``human1_lib1.final_cell_0001``),
  the inDrop barcode and the cell type (scRNAseq's script keeps
  ``input[,4:ncol(input)]`` as counts and ``assigned_cluster`` as the label;
  other loaders read it with ``pd.read_csv(..., index_col=0)``).
- All four human files share one gene order (the scRNAseq script checks it):
  20,125 genes, 8,569 cells in all (SingleCellExperiment summaries printed by
  public code), cell ids unique across donors (human1_lib1..., human4_lib3...).

`donor` comes from the ``humanN`` part of the file name (or of the cell ids
when the file was renamed).
"""

from __future__ import annotations

import csv
import os
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import sum_duplicate_genes
from celllm.io import validate_dataset
from ingest.sources._common import Expansion, categorical_obs, describe_real, existing_file, open_text, tar_members

LEADING_COLUMNS = ("barcode", "assigned_cluster")
DONOR = re.compile(r"(?:^|_)(human\d+)(?:_|$)")
MOUSE = re.compile(r"(?:^|_)mouse\d+(?:_|$)")
CHUNK_ROWS = 500


def parse_baron(csv_paths: str | os.PathLike | Sequence[str | os.PathLike]) -> ad.AnnData:
    """Baron human pancreas as an AnnData in the standard contract.

    `csv_paths`: the human ``GSM..._humanN_umifm_counts.csv[.gz]`` files, or
    the ``GSE84133_RAW.tar`` itself (its human members are read in place).
    Mouse files are refused. Returns raw UMI counts (float32 CSR), obs
    ``cell_type`` (= assigned_cluster), ``donor`` (human1..human4) and
    ``barcode``; var_names = gene symbols; obs_names = the files' cell ids,
    unique across samples.
    """
    paths = [csv_paths] if isinstance(csv_paths, (str, os.PathLike)) else list(csv_paths)
    if not paths:
        raise InputError("Baron: no count files given")
    samples: list[ad.AnnData] = []
    for path in paths:
        path = existing_file(path)
        if tarfile.is_tarfile(path):
            samples.extend(_read_tar(path))
        else:
            samples.append(read_baron_sample(path))

    genes = samples[0].var_names
    for sample in samples[1:]:
        if not sample.var_names.equals(genes):
            raise InputError(
                f"{sample.uns['file']}: genes differ from those of {samples[0].uns['file']} (all GSE84133 human files share one gene list)"
            )
    donors = [s.obs["donor"].iloc[0] for s in samples]
    if len(set(donors)) != len(donors):
        dup = pd.Index(donors)[pd.Index(donors).duplicated()][0]
        raise InputError(f"Baron: donor '{dup}' is given twice")
    files = [s.uns["file"] for s in samples]
    adata = ad.concat(samples, join="inner", merge="first") if len(samples) > 1 else samples[0]
    if not adata.obs_names.is_unique:
        adata.obs_names = (adata.obs["donor"].astype(str) + ":" + adata.obs_names.astype(str)).to_numpy()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    categorical_obs(adata, ("cell_type", "donor"))
    validate_dataset(adata, "Baron (GSE84133)", required_obs=("cell_type", "donor"))
    describe_real(
        adata,
        "baron",
        "raw_counts",
        "counts",
        source="GEO GSE84133 (Baron et al. 2016) GSM..._humanN_umifm_counts.csv.gz",
        files=files,
    )
    return adata


def read_baron_sample(path: str | os.PathLike, fileobj: IO[bytes] | None = None, expansion: Expansion | None = None) -> ad.AnnData:
    """One ``GSM..._humanN_umifm_counts.csv[.gz]`` file (optionally read from `fileobj`, a member of the
    archive whose unpacked bytes `expansion` counts)."""
    path = Path(path)
    if fileobj is None:
        path = existing_file(path)
    if MOUSE.search(path.name.split(".")[0]):
        raise InputError(f"{path}: a mouse sample; the Baron dataset here is the human samples only")
    try:
        with open_text(path, fileobj, expansion) as fh:
            header = next(csv.reader([fh.readline()]), [])
            if len(header) < 4 or tuple(header[1:3]) != LEADING_COLUMNS:
                raise InputError(
                    f"{path}: header starts {header[:3]!r}; expected ['', 'barcode', 'assigned_cluster', "
                    f"<genes>...] (GSE84133 umifm_counts layout)"
                )
            genes = header[3:]
            ids, barcodes, labels, blocks = [], [], [], []
            reader = pd.read_csv(
                fh,
                header=None,
                names=["id", *LEADING_COLUMNS, *range(len(genes))],
                dtype={"id": str, "barcode": str, "assigned_cluster": str},
                chunksize=CHUNK_ROWS,
                low_memory=False,
            )
            for chunk in reader:
                counts = chunk.iloc[:, 3:]
                try:
                    values = counts.to_numpy(dtype=np.float32)
                except (ValueError, TypeError):
                    raise InputError(f"{path}: non-numeric count in a gene column") from None
                if not np.isfinite(values).all():
                    raise InputError(
                        f"{path}: empty, NaN or infinite count (row of cell "
                        f"'{chunk['id'].iloc[int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])]}')"
                    )
                if (values < 0).any():
                    raise InputError(f"{path}: negative count")
                blocks.append(sp.csr_matrix(values))
                ids.extend(chunk["id"].tolist())
                barcodes.extend(chunk["barcode"].tolist())
                labels.extend(chunk["assigned_cluster"].tolist())
    except InputError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
        raise InputError(
            f"{path}: not a valid GSE84133 count table ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
        ) from None
    if not ids:
        raise InputError(f"{path}: no cells")
    if any(not isinstance(v, str) or not v for v in labels):
        raise InputError(f"{path}: a cell has no assigned_cluster")
    if any(not isinstance(v, str) or not v for v in ids) or len(set(ids)) != len(ids):
        raise InputError(f"{path}: cell ids (first column) are missing or repeated")
    donor = _donor(path.name, ids, path)
    X, genes, _ = sum_duplicate_genes(sp.vstack(blocks, format="csr"), genes)
    obs = pd.DataFrame({"cell_type": labels, "donor": donor, "barcode": barcodes}, index=pd.Index(ids, dtype=object))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    validate_dataset(adata, str(path), required_obs=("cell_type", "donor"))
    adata.uns["file"] = str(path)
    return adata


def _donor(file_name: str, ids: list[str], path: Path) -> str:
    match = DONOR.search(file_name.split(".")[0])
    if match:
        return match.group(1)
    prefixes = {i.split("_", 1)[0] for i in ids}
    if len(prefixes) == 1 and re.fullmatch(r"human\d+", next(iter(prefixes))):
        return next(iter(prefixes))
    raise InputError(f"{path}: cannot tell the donor (no 'humanN' in the file name or in the cell ids)")


def _read_tar(path: Path) -> list[ad.AnnData]:
    try:
        with tarfile.open(path) as archive:
            expansion = Expansion(path)  # the tar and every csv.gz in it, unpacked, under one cap
            members = [
                m
                for m in tar_members(archive, path, expansion)
                if m.isfile() and DONOR.search(Path(m.name).name.split(".")[0]) and "umifm_counts.csv" in Path(m.name).name
            ]
            if not members:
                raise InputError(f"{path}: no GSM..._humanN_umifm_counts.csv.gz member (not GSE84133_RAW.tar?)")
            samples = []
            for member in sorted(members, key=lambda m: m.name):
                stream = archive.extractfile(member)
                assert stream is not None
                sample = read_baron_sample(Path(f"{path}:{member.name}"), fileobj=stream, expansion=expansion)
                samples.append(sample)
            return samples
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"{path}: unreadable tar archive ({type(exc).__name__}: {exc})") from None
