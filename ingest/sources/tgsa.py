"""TGSA's gene set (Zhu et al. 2022, Bioinformatics; github.com/violet-sto/TGSA): the 706 Cancer Gene
Census genes over which its drug-response model TGDRP sees a cell line's expression, copy number and
mutations.

File: ``data/CellLines_DepMap/CCLE_580_18281/census_706/mu.csv`` of the repository (pinned at a commit in
config/datasets.tsv), TGSA's binary mutation table: header ``DepMap_ID,(10000),(10006),...``, the genes
by their NCBI Entrez id in parentheses (no symbol), then one row per DepMap model (580). Only the header
is used here: the genes, in TGSA's order (its gene graph follows that order). Checked on a real copy in
tests/data/real/tgsa_genes/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from ingest.sources._common import read_header

WHAT = "TGSA gene table (census_706/mu.csv: DepMap_ID,(ENTREZ),...)"
ID_COLUMN = "DepMap_ID"
ENTREZ_COLUMN = re.compile(r"^\((?P<entrez>\d+)\)$")


def parse_tgsa_genes(path: str | os.PathLike) -> list[int]:
    """The Entrez ids of the gene columns of TGSA's mu.csv, in its order; one line naming the file for a
    header that does not start with DepMap_ID, or a column not written '(ENTREZ)', or a gene named twice."""
    path = Path(path)
    header = read_header(path, WHAT)
    if header[0] != ID_COLUMN:
        raise InputError(f"{path}: the first column is {header[0]!r}, not {ID_COLUMN!r}; expected the {WHAT}")
    if len(header) == 1:
        raise InputError(f"{path}: no gene columns after {ID_COLUMN}; expected the {WHAT}")
    matches = [ENTREZ_COLUMN.match(c) for c in header[1:]]
    odd = [c for c, m in zip(header[1:], matches) if m is None]
    if odd:
        raise InputError(
            f"{path}: {len(odd)} of {len(matches)} gene columns are not an Entrez id in parentheses "
            f"(first: {odd[0]!r}); expected the {WHAT}"
        )
    entrez = [int(m.group("entrez")) for m in matches]
    if len(set(entrez)) < len(entrez):
        repeated = pd.Index(entrez)[pd.Index(entrez).duplicated()][0]
        raise InputError(f"{path}: gene ({repeated}) is named twice; expected the {WHAT}")
    return entrez


def gene_symbols(entrez: list[int], hgnc: GeneSymbols) -> tuple[pd.Series, list[int]]:
    """(Entrez id -> today's HGNC symbol, in the order of `entrez`; the ids HGNC's table has no symbol for)."""
    if not hgnc.by_entrez:
        raise InputError("the HGNC table has no entrez_id column: TGSA's genes are named by Entrez id")
    known = [e for e in entrez if e in hgnc.by_entrez]
    symbols = pd.Series([hgnc.by_entrez[e] for e in known], index=pd.Index(known, name="entrez_id"), dtype=object)
    return symbols, [e for e in entrez if e not in hgnc.by_entrez]
