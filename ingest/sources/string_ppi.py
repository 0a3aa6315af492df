"""STRING v12 human protein network -> gene interaction table (gene_a, gene_b, score).

Files, and where each fact about them comes from (STRING's download page
https://string-db.org/cgi/download, version 12.0, organism 9606; the file
addresses as used by many public pipelines found by code search, which fetch
from stringdb-downloads.org, formerly stringdb-static.org):

- ``https://stringdb-downloads.org/download/protein.links.v12.0/9606.protein.links.v12.0.txt.gz``:
  gzip, space-separated, header ``protein1 protein2 combined_score``, one row per
  ordered pair (every interaction appears in both directions), ids like
  ``9606.ENSP00000000233``, scores 0..1000 (150 low, 400 medium, 700 high,
  900 highest confidence). The ``.detailed``/``.full`` variants add channel
  columns before ``combined_score``; they are read too.
- ``https://stringdb-downloads.org/download/protein.info.v12.0/9606.protein.info.v12.0.txt.gz``:
  gzip, tab-separated, header ``#string_protein_id  preferred_name  protein_size
  annotation`` (the annotation is free text with spaces, hence the tabs).

Output: the interaction-table contract of `celllm.ppi.pipeline.read_edges` /
`celllm.ppi.graph.build_gene_graph`: columns gene_a, gene_b, score (int, STRING's
0..1000 scale). Proteins are named by ``preferred_name`` (a gene symbol for
nearly every human protein); several proteins of one gene become one node, the
pair keeping its highest score. Proteins whose preferred name is not a gene symbol
are left out with their links: STRING v12 names some proteins by their UniProt entry
name (``YI018_HUMAN``) or by their own Ensembl protein id (``ENSP00000499955``), as a
real copy of the info file shows (tests/data/real/string_info/). One row per undirected pair (gene_a < gene_b),
self loops (also those made by that merging) dropped, score >= min_score kept,
rows sorted by (gene_a, gene_b). Links naming a protein absent from the info
file are dropped with a logged count.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from celllm.errors import InputError
from ingest.ledger import Ledger
from ingest.sources._common import check_full_header, open_text

log = logging.getLogger(__name__)

VERSION = "12.0"
LINKS_URL = "https://stringdb-downloads.org/download/protein.links.v12.0/9606.protein.links.v12.0.txt.gz"
INFO_URL = "https://stringdb-downloads.org/download/protein.info.v12.0/9606.protein.info.v12.0.txt.gz"
LINK_COLUMNS = ["protein1", "protein2", "combined_score"]
INFO_ID = "#string_protein_id"
INFO_NAME = "preferred_name"
CHUNK_ROWS = 2_000_000  # the human links file has ~13.7M rows: read it in pieces, keep only integer codes


NOT_A_SYMBOL = re.compile(r"^(?:[A-Z0-9]+_HUMAN|ENSP\d+|9606\.ENSP\d+)$")  # UniProt entry names, protein ids


def parse_string(
    links_path: str | os.PathLike, info_path: str | os.PathLike, min_score: int = 0, ledger: Ledger | None = None
) -> pd.DataFrame:
    """Undirected gene-level interactions from STRING's links and info files (see module docstring).

    Raises InputError naming the file for a missing file, a wrong header, a protein
    without a preferred name, a missing or non-numeric score, no links, and no
    interaction left (every link unknown, a self loop, or below `min_score`).
    """
    links_path, info_path = Path(links_path), Path(info_path)
    for path, what in ((links_path, "STRING links file"), (info_path, "STRING protein info file")):
        if not path.exists():
            raise InputError(f"{path}: {what} not found")
    ledger = ledger if ledger is not None else Ledger("string_human")
    proteins, gene_of_protein, genes = read_string_info(info_path, ledger)

    a_parts, b_parts, score_parts = [], [], []
    n_rows = n_unknown = 0
    try:
        with open_text(links_path) as fh:  # gzip unpacked under the cap on what one file may expand to
            header = pd.read_csv(fh, sep=" ", nrows=0).columns.tolist()
        missing = [c for c in LINK_COLUMNS if c not in header]
        if missing:
            raise InputError(
                f"{links_path}: missing column(s) {', '.join(missing)} (header: {' '.join(map(str, header)) or 'empty'}); expected space-separated protein1 protein2 combined_score"
            )
        with open_text(links_path) as fh:
            reader = pd.read_csv(
                fh,
                sep=" ",
                usecols=LINK_COLUMNS,
                dtype={"protein1": str, "protein2": str, "combined_score": str},
                chunksize=CHUNK_ROWS,
                keep_default_na=False,
            )
            for chunk in reader:
                score = pd.to_numeric(chunk["combined_score"], errors="coerce").to_numpy(dtype=np.float64)
                bad = ~np.isfinite(score)
                if bad.any():
                    raise InputError(
                        f"{links_path}: {int(bad.sum())} combined_score values are missing or not numbers (first: {chunk['combined_score'][bad].iloc[0]!r}, line {n_rows + int(np.flatnonzero(bad)[0]) + 2})"
                    )
                a = proteins.get_indexer(chunk["protein1"])
                b = proteins.get_indexer(chunk["protein2"])
                known = (a >= 0) & (b >= 0)
                n_rows += len(chunk)
                n_unknown += int((~known).sum())
                a_parts.append(gene_of_protein[a[known]])
                b_parts.append(gene_of_protein[b[known]])
                score_parts.append(score[known])
    except InputError:
        raise
    except pd.errors.EmptyDataError:  # a ValueError too: caught first
        raise InputError(f"{links_path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{links_path}: not a readable space-separated STRING links file ({exc.__class__.__name__}: {exc})") from None
    if n_rows == 0:
        raise InputError(f"{links_path}: no links (only a header)")
    ledger.record(
        "links", "links", n_rows, n_rows - n_unknown, f"links naming a protein absent from {info_path.name}, or one named by no gene symbol"
    )

    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    score = np.concatenate(score_parts)
    keep = (a != b) & (score >= min_score)
    lo, hi, score = np.minimum(a, b)[keep], np.maximum(a, b)[keep], score[keep]
    if lo.size == 0:
        raise InputError(f"{links_path}: no interaction between two different genes with score >= {min_score} (of {n_rows} links)")
    key = lo.astype(np.int64) * len(genes) + hi
    order = np.lexsort((-score, key))  # by pair, the highest score first
    key, score = key[order], score[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, score = key[first], score[first]
    gene_a, gene_b = genes[key // len(genes)], genes[key % len(genes)]
    log.info("%s: %d links -> %d undirected gene pairs with score >= %d", links_path, n_rows, key.size, min_score)
    scores = score.astype(np.int64) if np.all(score == np.round(score)) else score
    return pd.DataFrame({"gene_a": gene_a, "gene_b": gene_b, "score": scores})


def read_string_info(path: Path, ledger: Ledger) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(protein ids, gene code of each protein, gene names sorted) from the protein info file."""
    try:
        with open_text(path) as fh:
            info = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    except InputError:
        raise
    except pd.errors.EmptyDataError:  # a ValueError too: caught first
        raise InputError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable tab-separated STRING info file ({exc.__class__.__name__})") from None
    check_full_header(info, path, "tab-separated STRING info file (#string_protein_id, preferred_name, ...)")
    missing = [c for c in (INFO_ID, INFO_NAME) if c not in info.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(map(str, info.columns[:4])) or 'empty'}); expected tab-separated #string_protein_id, preferred_name, ..."
        )
    if info.empty:
        raise InputError(f"{path}: no proteins")
    ids = info[INFO_ID].str.strip()
    names = info[INFO_NAME].str.strip()
    empty = (ids == "") | (names == "")
    if empty.any():
        raise InputError(
            f"{path}: {int(empty.sum())} proteins without an id or preferred_name (first: line {int(np.flatnonzero(empty)[0]) + 2})"
        )
    first = ~ids.duplicated()
    ids, names = ids[first], names[first]
    symbol = ~names.str.match(NOT_A_SYMBOL.pattern)
    ledger.record(
        "proteins",
        "proteins",
        len(ids),
        int(symbol.sum()),
        "preferred names that are no gene symbol (UniProt entry names, Ensembl protein ids) left out with their links",
        names[~symbol].tolist(),
    )
    ids, names = ids[symbol], names[symbol]
    genes, codes = np.unique(names.to_numpy(dtype=str), return_inverse=True)
    if len(genes) < len(ids):
        log.info("%s: %d proteins share a preferred name with another and are merged into its gene", path, len(ids) - len(genes))
    return pd.Index(ids.to_numpy()), codes.astype(np.int64), genes.astype(object)
