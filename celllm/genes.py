"""One gene symbol space for every source: HGNC-approved human gene symbols.

Sources name genes differently (10x and PanglaoDB by Ensembl id and symbol,
GEO tables by the symbol of their year, DepMap by "SYMBOL (ENTREZ)", STRING
by its preferred name). Each is mapped to the symbol the HGNC approves today,
using the HGNC complete set (a tab-separated file, one row per approved gene,
with `symbol`, `locus_group`, pipe-separated `alias_symbol` and `prev_symbol`,
and `ensembl_gene_id`, and `entrez_id` where the file has it; layout from genenames.org's download page).

Rules, in order: an approved symbol is itself; an Ensembl gene id (version
suffix ignored) is its gene; a previous symbol, then an alias, is the gene
it names when it names exactly one. Anything else keeps its name if it looks
like a symbol and is dropped if it is an unmapped Ensembl id. Several source
genes that land on one symbol are summed (counts of one gene split across
old and new names add up).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError

log = logging.getLogger(__name__)

HGNC_COLUMNS = ["symbol", "locus_group", "alias_symbol", "prev_symbol", "ensembl_gene_id"]
ENTREZ_COLUMN = "entrez_id"  # read where present: DepMap names its genes by Entrez id too
ENSEMBL = re.compile(r"^ENSG\d+(\.\d+)?$")


def sum_duplicate_genes(X: sp.csr_matrix, genes: Sequence[str]) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """Sum the columns of genes that share a name; returns (X, unique names, codes).

    `codes[j]` is the output column of input gene j. Symbols are the project's
    gene space (this module), and two Ensembl genes with one symbol are one
    symbol there, so their counts are added rather than renamed 'X-1'.
    """
    codes, uniques = pd.factorize(pd.Index(list(genes), dtype=object))
    if len(uniques) == len(codes):
        return X, list(uniques), codes
    n = len(codes)
    merge = sp.csr_matrix((np.ones(n, dtype=X.dtype), (np.arange(n), codes)), shape=(n, len(uniques)))
    return (X @ merge).tocsr(), list(uniques), codes


@dataclass
class GeneSymbols:
    approved: set[str]
    protein_coding: set[str]
    by_ensembl: dict[str, str]
    by_previous: dict[str, str]
    by_alias: dict[str, str]
    ambiguous: set[str] = field(default_factory=set)
    by_entrez: dict[int, str] = field(default_factory=dict)  # empty when the table has no entrez_id column

    @classmethod
    def from_hgnc(cls, path) -> GeneSymbols:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: HGNC gene table not found")
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, usecols=lambda c: c in (*HGNC_COLUMNS, ENTREZ_COLUMN), keep_default_na=False)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a readable HGNC table ({exc.__class__.__name__})") from None
        if not isinstance(table.index, pd.RangeIndex):  # pandas took the extra leading fields as an index: every column shifted
            raise InputError(
                f"{path}: its rows have more fields than its header names; expected the HGNC complete set with its full header"
            )
        missing = [c for c in HGNC_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(f"{path}: missing HGNC column(s) {', '.join(missing)}")
        table = table[table["symbol"] != ""]
        if table.empty:
            raise InputError(f"{path}: no approved gene symbols")
        approved = set(table["symbol"])
        protein_coding = set(table.loc[table["locus_group"] == "protein-coding gene", "symbol"])
        by_ensembl = {e: s for e, s in zip(table["ensembl_gene_id"], table["symbol"]) if e}
        ambiguous: set[str] = set()

        def unique_map(column: str) -> dict[str, str]:
            targets: dict[str, set[str]] = {}
            for names, symbol in zip(table[column], table["symbol"]):
                for name in filter(None, names.strip('"').split("|")):
                    targets.setdefault(name.strip(), set()).add(symbol)
            ambiguous.update(n for n, s in targets.items() if len(s) > 1 and n not in approved)
            return {n: next(iter(s)) for n, s in targets.items() if len(s) == 1 and n not in approved}

        by_entrez = (
            {int(e): s for e, s in zip(table[ENTREZ_COLUMN], table["symbol"]) if e.strip().isdigit()} if ENTREZ_COLUMN in table else {}
        )
        return cls(approved, protein_coding, by_ensembl, unique_map("prev_symbol"), unique_map("alias_symbol"), ambiguous, by_entrez)

    def symbol(self, identifier: str, ensembl_ids: str = "") -> str | None:
        """The approved symbol of an identifier; its own name if unknown, None for an unknown Ensembl id.

        `ensembl_ids`: the source's Ensembl gene id(s) of that gene (';'-separated), used when
        the name itself is not an approved symbol: a stable id beats a name of another year
        (PanglaoDB writes A1BG-AS1 as 'A1BG_AS1', which no symbol rule resolves).
        """
        name = str(identifier).strip()
        if name in self.approved:
            return name
        if ENSEMBL.match(name):
            return self.by_ensembl.get(name.split(".")[0])
        for ensembl in filter(None, str(ensembl_ids or "").split(";")):
            if ENSEMBL.match(ensembl.strip()) and ensembl.strip().split(".")[0] in self.by_ensembl:
                return self.by_ensembl[ensembl.strip().split(".")[0]]
        return self.by_previous.get(name) or self.by_alias.get(name) or name

    def harmonise(self, adata: ad.AnnData, source: str = "data") -> ad.AnnData:
        """A copy of `adata` with var_names mapped to approved symbols, unmappable genes dropped, duplicates summed.
        A `var['ensembl_id']` column (';'-separated ids) is used for names that are not approved symbols.
        The cells and what is kept per cell (.obs, .obsm) are those of `adata`."""
        ensembl = adata.var["ensembl_id"].astype(str).tolist() if "ensembl_id" in adata.var.columns else [""] * adata.n_vars
        mapped = [self.symbol(g, e) for g, e in zip(adata.var_names, ensembl)]
        keep = np.array([m is not None for m in mapped])
        if not keep.any():
            raise InputError(f"{source}: none of its {adata.n_vars} genes maps to a human gene symbol")
        symbols = [m for m in mapped if m is not None]
        changed = sum(1 for g, m in zip(adata.var_names, mapped) if m is not None and m != g)
        X, unique, _ = sum_duplicate_genes(sp.csr_matrix(adata.X, dtype=np.float32)[:, np.flatnonzero(keep)], symbols)
        order = np.argsort(unique)  # symbols in sorted order, whatever the source's gene order
        X, unique = X[:, order], [unique[i] for i in order]
        log.info(
            "%s: %d genes renamed to approved symbols, %d unmapped Ensembl ids dropped, %d duplicates summed",
            source,
            changed,
            int((~keep).sum()),
            len(symbols) - len(unique),
        )
        out = ad.AnnData(
            sp.csr_matrix(X, dtype=np.float32),
            obs=adata.obs.copy(),
            var=pd.DataFrame(index=pd.Index(unique, name=None)),
            uns=dict(adata.uns),
            obsm={key: value.copy() for key, value in adata.obsm.items()},
        )
        out.uns["gene_symbols"] = "HGNC approved"
        # what the mapping did, for the data ledger: the unmapped Ensembl ids by name (a few)
        unmapped = [str(g) for g, m in zip(adata.var_names, mapped) if m is None]
        out.uns["gene_mapping"] = {
            "genes_in": int(adata.n_vars),
            "genes_out": len(unique),
            "renamed": int(changed),
            "unmapped": len(unmapped),
            "summed": len(symbols) - len(unique),
            "unmapped_examples": unmapped[:25],
        }
        return out

    def harmonise_edges(self, edges: pd.DataFrame, source: str = "edges") -> pd.DataFrame:
        """An interaction table (gene_a, gene_b, score) in approved symbols: unmappable genes and self-loops dropped, the best score kept per pair."""
        a = edges["gene_a"].map(self.symbol)
        b = edges["gene_b"].map(self.symbol)
        keep = a.notna() & b.notna() & (a != b)
        pairs = pd.DataFrame(
            {"gene_a": np.minimum(a[keep], b[keep]), "gene_b": np.maximum(a[keep], b[keep]), "score": edges.loc[keep, "score"]}
        )
        out = pairs.groupby(["gene_a", "gene_b"], as_index=False, sort=True)["score"].max()
        if out.empty:
            raise InputError(f"{source}: no interaction between two human gene symbols")
        log.info("%s: %d of %d interactions kept in approved symbols", source, len(out), len(edges))
        return out
