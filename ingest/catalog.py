"""The real datasets of the paper configuration: which downloaded files make each one, and how.

Every entry names its sources (ids of config/datasets.tsv) and a builder
that turns the downloaded files into the standard contract with the parsers
of `ingest.sources`. `build_dataset` then maps genes to HGNC symbols,
brings log-scale expression back to a linear scale (the tokenizer
normalises and logs it itself), validates and writes atomically.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from celllm.io import atomic_path, read_annotated_tsv, validate_dataset, write_h5ad

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealDataset:
    name: str
    sources: tuple[str, ...]  # ids of config/datasets.tsv the builder reads
    build: Callable[[dict[str, Path]], object]
    response: bool = False  # a drug-response dataset: (cell-line AnnData, response table)
    summary: str = ""


def _zheng68k(files):
    from ingest.sources.zheng68k import parse_zheng68k

    return parse_zheng68k(files["zheng68k_matrix"], files["zheng68k_annotation"])


def _baron(files):
    from ingest.sources.baron import parse_baron

    return parse_baron(files["baron_raw"])


def _gse117872(files):
    from ingest.sources.gse117872 import parse_gse117872

    return parse_gse117872(files["gse117872_tpm"], files["gse117872_cellinfo"])


def _gse149383(files):
    from ingest.sources.gse149383 import parse_gse149383

    return parse_gse149383(files["gse149383_expression"], files["gse149383_meta"])


def _samples(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """The per-sample files a corpus source keeps in one folder."""
    found = sorted(p for pattern in patterns for p in Path(folder).glob(pattern))
    if not found:
        raise InputError(f"{folder}: no sample files ({', '.join(patterns)})")
    return found


def _panglaodb(files):
    from ingest.sources.panglaodb import parse_panglaodb

    return parse_panglaodb(_samples(files["panglaodb_human"], ("*.RData", "*.rdata")), tissue="normal")


def _cancerscem(files):
    from ingest.sources.cancerscem import parse_cancerscem

    return parse_cancerscem(_samples(files["cancerscem"], ("*.tsv", "*.tsv.gz", "*.txt", "*.txt.gz")))


def _gdsc_smiles(files) -> pd.DataFrame:
    from ingest.sources.gdsc import parse_gdsc_drug_list
    from ingest.sources.smiles import parse_pubchem_smiles

    return parse_pubchem_smiles(files["pubchem_smiles"], parse_gdsc_drug_list(files["gdsc_drug_list"]))


def _gdsc(files):
    from ingest.sources.gdsc import parse_gdsc_expression, parse_gdsc_response

    expression = parse_gdsc_expression(files["gdsc_expression"])
    return expression, parse_gdsc_response([files["gdsc1_response"], files["gdsc2_response"]], _gdsc_smiles(files))


def _ccle(files):
    from ingest.sources.ccle import parse_ccle_expression, parse_ccle_response

    # CCLE ships no drug identifiers: its 24 compounds take the SMILES of the GDSC drug of the same name
    expression = parse_ccle_expression(files["ccle_expression"], files["ccle_models"])
    return expression, parse_ccle_response(files["ccle_response"], _gdsc_smiles(files))


CATALOG: dict[str, RealDataset] = {
    entry.name: entry
    for entry in (
        RealDataset("zheng68k", ("zheng68k_matrix", "zheng68k_annotation"), _zheng68k, summary="10x fresh 68k PBMCs, FACS-based cell types"),
        RealDataset("baron", ("baron_raw",), _baron, summary="human pancreas (GSE84133), 4 donors"),
        RealDataset("gse117872", ("gse117872_tpm", "gse117872_cellinfo"), _gse117872, summary="oral SCC cells, cisplatin sensitive/resistant"),
        RealDataset("gse149383", ("gse149383_expression", "gse149383_meta"), _gse149383, summary="PC9 lung cells, erlotinib sensitive/resistant"),
        RealDataset("panglaodb_human", ("panglaodb_human",), _panglaodb, summary="PanglaoDB human samples (normal tissue), pretraining"),
        RealDataset("cancerscem", ("cancerscem",), _cancerscem, summary="CancerSCEM tumour samples, pretraining"),
        RealDataset("gdsc", ("gdsc_expression", "gdsc1_response", "gdsc2_response", "gdsc_drug_list", "pubchem_smiles"), _gdsc, response=True,
                    summary="GDSC cell lines (RMA expression) x drugs, ln IC50"),
        RealDataset("ccle", ("ccle_expression", "ccle_models", "ccle_response", "gdsc_drug_list", "pubchem_smiles"), _ccle, response=True,
                    summary="CCLE cell lines (DepMap TPM) x 24 drugs, ln IC50"),
    )
}

STRING_EDGES = "string_human"  # the interaction table parsed from STRING (results/data/{name}.tsv)

# log-scale sources, and how each returns to a linear scale the tokenizer can normalise
LINEAR_SCALE = {
    "rma_log2": ("2^x (RMA intensity)", lambda x: np.exp2(x)),
    "log2_tpm_plus_1": ("tpm", lambda x: np.exp2(x) - 1.0),
}


def to_linear_scale(adata: ad.AnnData, source: str) -> ad.AnnData:
    """Undo a source's log transform, recorded in .uns['value_scale'] (counts and TPM pass through)."""
    scale = adata.uns.get("value_scale")
    if scale not in LINEAR_SCALE:
        return adata
    name, inverse = LINEAR_SCALE[scale]
    dense = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    linear = np.clip(inverse(dense.astype(np.float64)), 0.0, None).astype(np.float32)
    out = adata.copy()
    out.X = sp.csr_matrix(linear)
    out.uns["value_scale"] = name
    log.info("%s: %s values brought back to %s", source, scale, name)
    return out


def build_dataset(name: str, files: dict, hgnc, out_h5ad, out_response=None) -> ad.AnnData:
    """Parse a real dataset's downloaded files into results/data/{name}.h5ad (+ .response.tsv)."""
    if name not in CATALOG:
        raise InputError(f"unknown real dataset '{name}' (known: {', '.join(CATALOG)})")
    entry = CATALOG[name]
    missing = [s for s in entry.sources if s not in files]
    if missing:
        raise InputError(f"{name}: missing downloaded file(s) for {', '.join(missing)}")
    built = entry.build({k: Path(v) for k, v in files.items()})
    adata, response = built if entry.response else (built, None)
    adata = GeneSymbols.from_hgnc(hgnc).harmonise(to_linear_scale(adata, name), name)
    validate_dataset(adata, name)
    if entry.response:
        if out_response is None:
            raise InputError(f"{name}: a drug-response dataset needs a path for its response table")
        with atomic_path(out_response) as tmp:
            response.to_csv(tmp, sep="\t", index=False)
    write_h5ad(adata, out_h5ad)
    return adata


SOURCE_COLUMNS = ["id", "file", "url", "format", "sha256", "citation_licence", "source_of_facts"]


def _gdsc_cids(path) -> str:
    from ingest.sources.gdsc import parse_gdsc_drug_list
    from ingest.sources.smiles import pubchem_cid_list

    return pubchem_cid_list(parse_gdsc_drug_list(path)["pubchem_cid"])


# Fields an address of the source table may hold, each filled from another source's
# file: PubChem's query lists the CIDs of GDSC's compound list. field -> (source, reader)
ADDRESS_FIELDS: dict[str, tuple[str, Callable[[Path], str]]] = {"pubchem_cids": ("gdsc_drug_list", _gdsc_cids)}


def address_fields(url: str, where: str = "address") -> list[str]:
    """The {fields} of an address, in order; InputError naming `where` for an unknown one."""
    fields = [name for _, name, _, _ in string.Formatter().parse(url) if name is not None]
    unknown = [f for f in fields if f not in ADDRESS_FIELDS]
    if unknown:
        raise InputError(f"{where}: unknown field {{{unknown[0]}}} in address {url} (known: {', '.join(ADDRESS_FIELDS)})")
    return fields


def address_sources(url: str) -> list[str]:
    """The sources whose files fill an address's fields (none for a plain address)."""
    return [ADDRESS_FIELDS[f][0] for f in address_fields(url)]


def resolve_address(url: str, files: dict) -> str:
    """The address with its fields filled from the files of `address_sources(url)` (source id -> path)."""
    values = {}
    for field in address_fields(url):
        source, read = ADDRESS_FIELDS[field]
        if source not in files:
            raise InputError(f"address {url}: field {{{field}}} needs the file of source '{source}'")
        values[field] = read(Path(files[source]))
    return url.format(**values)


def read_sources(path) -> pd.DataFrame:
    """config/datasets.tsv: one row per downloaded file, indexed by id (lines starting with '#' are comments)."""
    table = read_annotated_tsv(path, "source table")
    missing = [c for c in SOURCE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if table["id"].duplicated().any():
        raise InputError(f"{path}: duplicated source id '{table.loc[table['id'].duplicated(), 'id'].iloc[0]}'")
    table = table.set_index("id")
    for source, url in table["url"].items():
        for field in address_fields(url, f"{path}: row '{source}'"):
            needed = ADDRESS_FIELDS[field][0]
            if needed not in table.index:
                raise InputError(f"{path}: the address of '{source}' reads source '{needed}', which has no row")
    return table
