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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from celllm.io import read_annotated_tsv, validate_dataset, write_h5ad
from celllm.outputs import atomic_path
from ingest.ledger import Ledger, LossPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealDataset:
    name: str
    sources: tuple[str, ...]  # ids of config/datasets.tsv the builder reads
    build: Callable[[dict[str, Path], Ledger], object]  # (files by source id, the ledger it records its steps in)
    response: bool = False  # a drug-response dataset: (cell-line AnnData, response table)
    summary: str = ""
    labels: tuple[str, ...] = ()  # what a task can predict from it: .obs columns, or the response table's ln_ic50


def _zheng68k(files, ledger):
    from ingest.sources.zheng68k import parse_zheng68k

    return parse_zheng68k(files["zheng68k_matrix"], files["zheng68k_annotation"], ledger)


def _baron(files, ledger):
    from ingest.sources.baron import parse_baron

    return parse_baron(files["baron_raw"])


def _gse117872(origin: str):
    def build(files, ledger):
        from ingest.sources.gse117872 import parse_gse117872

        return parse_gse117872(files["gse117872_tpm"], files["gse117872_cellinfo"], origins=[origin], ledger=ledger)

    return build


def _gse149383(files, ledger):
    from ingest.sources.gse149383 import parse_gse149383

    return parse_gse149383(files["gse149383_expression"], files["gse149383_meta"], ledger=ledger)


def _samples(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """The per-sample files a corpus source keeps in one folder."""
    found = sorted(p for pattern in patterns for p in Path(folder).glob(pattern))
    if not found:
        raise InputError(f"{folder}: no sample files ({', '.join(patterns)})")
    return found


def _panglaodb(files, ledger):
    from ingest.sources.panglaodb import parse_panglaodb

    return parse_panglaodb(_samples(files["panglaodb_human"], ("*.RData", "*.rdata")), tissue="normal")


def _cancerscem(files, ledger):
    from ingest.sources.cancerscem import parse_cancerscem

    return parse_cancerscem(_samples(files["cancerscem"], ("*.tsv", "*.tsv.gz", "*.txt", "*.txt.gz")))


DRUG_SOURCES = ("gdsc_drug_list", "pubchem_smiles", "pubchem_names")  # what drug structures are found through


def _drug_structures(files):
    from ingest.sources.gdsc import parse_gdsc_drug_list
    from ingest.sources.smiles import parse_pubchem_properties
    from ingest.structures import DrugStructures

    return DrugStructures(
        parse_gdsc_drug_list(files["gdsc_drug_list"]),
        parse_pubchem_properties(files["pubchem_smiles"]),
        parse_pubchem_properties(files["pubchem_names"], query=True),
    )


def _gdsc_rma(files, ledger):
    from ingest.response import assemble
    from ingest.sources.depmap import DepMapModels
    from ingest.sources.gdsc import parse_gdsc_expression, parse_gdsc_response

    expression = parse_gdsc_expression(files["gdsc_expression"], ledger=ledger)
    pairs = parse_gdsc_response([files["gdsc1_response"], files["gdsc2_response"]], ledger)  # keyed by COSMIC id, as the RMA file
    built = assemble(expression, pairs, _drug_structures(files), ledger, "GDSC")
    # the omics are DepMap's: each GDSC line's model, as gdsc_depmap finds it (TGSA too paired GDSC with DepMap)
    lines = pairs.drop_duplicates("cell_line")
    matched = DepMapModels.read(files["ccle_models"]).match(
        sanger=lines["sanger_model_id"].tolist(), cosmic=lines["cell_line"].tolist(), names=lines["cell_line_name"].tolist()
    )
    model_of_line = {str(line): model for line, model in zip(lines["cell_line"], matched["model_id"]) if model}
    return _with_omics(built, files, ledger, model_of_line)


def _with_omics(built, files, ledger, model_of_line: dict | None = None):
    """A drug-response dataset with its cell lines' DepMap mutation and copy-number profiles over TGSA's genes
    in .obsm (`ingest.omics.attach_omics`); `files` holds the HGNC table too (build_dataset adds it).
    `model_of_line`: the DepMap model of each cell line, where lines are not named by model (GDSC's COSMIC ids)."""
    from celllm.genes import GeneSymbols
    from ingest.omics import attach_omics
    from ingest.sources.depmap import parse_depmap_copy_number, parse_depmap_mutations
    from ingest.sources.tgsa import gene_symbols, parse_tgsa_genes

    expression, response = built
    genes, unnamed = gene_symbols(parse_tgsa_genes(files["tgsa_genes"]), GeneSymbols.from_hgnc(files["hgnc"]))
    mutation = parse_depmap_mutations(files["depmap_mutations"], genes, ledger)
    copy_number = parse_depmap_copy_number(files["depmap_copy_number"], genes, ledger)
    if model_of_line is not None:
        mutation, copy_number = (_by_line(frame, model_of_line) for frame in (mutation, copy_number))
    return attach_omics(expression, mutation, copy_number, genes, unnamed, ledger), response


def _by_line(profiles, model_of_line: dict):
    """DepMap profiles (rows: models) with one row per cell line instead, for the lines whose model has one."""
    lines = [line for line, model in model_of_line.items() if model in profiles.index]
    return profiles.loc[[model_of_line[line] for line in lines]].set_axis(lines)


def _gdsc_depmap(files, ledger):
    from ingest.response import assemble, to_models
    from ingest.sources.depmap import DepMapModels, parse_depmap_expression
    from ingest.sources.gdsc import parse_gdsc_response

    models = DepMapModels.read(files["ccle_models"])
    expression = parse_depmap_expression(files["ccle_expression"], models, "gdsc_depmap", ledger)
    pairs = parse_gdsc_response([files["gdsc1_response"], files["gdsc2_response"]], ledger)
    lines = pairs.drop_duplicates("cell_line")
    matched = models.match(
        sanger=lines["sanger_model_id"].tolist(), cosmic=lines["cell_line"].tolist(), names=lines["cell_line_name"].tolist()
    )
    pairs = to_models(pairs, "cell_line", matched, ledger, "GDSC cell lines (COSMIC ids) to DepMap models")
    return _with_omics(assemble(expression, pairs, _drug_structures(files), ledger, "GDSC"), files, ledger)


def _ccle(files, ledger):
    from ingest.response import assemble, to_models
    from ingest.sources.ccle import parse_ccle_response
    from ingest.sources.depmap import DepMapModels, parse_depmap_expression

    models = DepMapModels.read(files["ccle_models"])
    expression = parse_depmap_expression(files["ccle_expression"], models, "ccle", ledger)
    pairs = parse_ccle_response(files["ccle_response"], ledger)
    lines = pairs.drop_duplicates("ccle_name")
    matched = models.match(ccle_names=lines["ccle_name"].tolist(), names=lines["primary_name"].tolist())
    pairs = to_models(pairs, "ccle_name", matched, ledger, "CCLE names to DepMap models")
    return _with_omics(assemble(expression, pairs, _drug_structures(files), ledger, "CCLE"), files, ledger)


DEPMAP = ("ccle_expression", "ccle_models")
OMICS = ("depmap_mutations", "depmap_copy_number", "tgsa_genes")  # mutation and copy number over TGSA's genes, in .obsm
GDSC_RESPONSES = ("gdsc1_response", "gdsc2_response")
CATALOG: dict[str, RealDataset] = {
    entry.name: entry
    for entry in (
        RealDataset(
            "zheng68k",
            ("zheng68k_matrix", "zheng68k_annotation"),
            _zheng68k,
            summary="10x fresh 68k PBMCs, FACS-based cell types",
            labels=("cell_type",),
        ),
        RealDataset("baron", ("baron_raw",), _baron, summary="human pancreas (GSE84133), 4 donors", labels=("cell_type", "donor")),
        RealDataset(
            "gse117872_hn137",
            ("gse117872_tpm", "gse117872_cellinfo"),
            _gse117872("HN137"),
            summary="oral SCC line HN137, cisplatin sensitive/resistant (scDEAL's GSE117872_HN137; most likely the paper's 548 cells)",
            labels=("response",),
        ),
        RealDataset(
            "gse117872_hn120",
            ("gse117872_tpm", "gse117872_cellinfo"),
            _gse117872("HN120"),
            summary="oral SCC line HN120, cisplatin sensitive/resistant (scDEAL's GSE117872_HN120)",
            labels=("response",),
        ),
        RealDataset(
            "gse149383",
            ("gse149383_expression", "gse149383_meta"),
            _gse149383,
            summary="PC9 lung cells, erlotinib sensitive/resistant",
            labels=("response",),
        ),
        RealDataset(
            "panglaodb_human",
            ("panglaodb_human",),
            _panglaodb,
            summary="PanglaoDB human samples (normal tissue), pretraining",
            labels=("tissue",),
        ),
        RealDataset("cancerscem", ("cancerscem",), _cancerscem, summary="CancerSCEM tumour samples, pretraining", labels=("tissue",)),
        RealDataset(
            "gdsc_depmap",
            (*DEPMAP, *OMICS, *GDSC_RESPONSES, *DRUG_SOURCES),
            _gdsc_depmap,
            response=True,
            summary="GDSC cell lines x drugs, ln IC50, with DepMap RNA-seq (the profiles the released CellLM saw); "
            "mutation and copy number of TGSA's genes in .obsm",
            labels=("ln_ic50",),
        ),
        RealDataset(
            "gdsc_rma",
            ("gdsc_expression", "ccle_models", *OMICS, *GDSC_RESPONSES, *DRUG_SOURCES),
            _gdsc_rma,
            response=True,
            summary="GDSC cell lines x drugs, ln IC50, with GDSC's own RMA microarrays; DepMap's mutation and copy number "
            "of TGSA's genes in .obsm",
            labels=("ln_ic50",),
        ),
        RealDataset(
            "ccle",
            (*DEPMAP, *OMICS, "ccle_response", *DRUG_SOURCES),
            _ccle,
            response=True,
            summary="CCLE cell lines (DepMap RNA-seq) x 24 drugs, ln IC50; mutation and copy number of TGSA's genes in .obsm",
            labels=("ln_ic50",),
        ),
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


def build_dataset(
    name: str,
    files: dict,
    hgnc,
    out_h5ad,
    out_response=None,
    out_ledger=None,
    policy: LossPolicy = LossPolicy(),
    max_len: int | None = None,
) -> ad.AnnData:
    """Parse a real dataset's downloaded files into results/data/{name}.h5ad (+ .response.tsv, + .ledger.tsv).

    Every step's counts go to the dataset's ledger (`ingest.ledger`), which is written to the
    log and to `out_ledger`; `policy` stops the parse, before anything is written, when a
    step loses more than it allows. `max_len`: the number of tokens the model reads per cell,
    to count the cells it will cut (step truncation).
    """
    if name not in CATALOG:
        raise InputError(f"unknown real dataset '{name}' (known: {', '.join(CATALOG)})")
    entry = CATALOG[name]
    missing = [s for s in entry.sources if s not in files]
    if missing:
        raise InputError(f"{name}: missing downloaded file(s) for {', '.join(missing)}")
    ledger = Ledger(name)
    built = entry.build({**{k: Path(v) for k, v in files.items()}, "hgnc": Path(hgnc)}, ledger)  # a builder may name genes by HGNC too
    adata, response = built if entry.response else (built, None)
    adata.uns["dataset"] = name  # one source may make several datasets (GSE117872's origins)
    adata = GeneSymbols.from_hgnc(hgnc).harmonise(to_linear_scale(adata, name), name)
    mapping = adata.uns["gene_mapping"]
    ledger.record(
        "symbols",
        "genes",
        mapping["genes_in"],
        mapping["genes_in"] - mapping["unmapped"],
        f"{mapping['renamed']} renamed to today's HGNC symbols, {mapping['summed']} summed into another of the same symbol; "
        f"Ensembl ids HGNC does not know dropped",
        mapping["unmapped_examples"],
        changed=mapping["renamed"] + mapping["summed"],
    )
    if max_len is not None:
        long = int((np.diff(sp.csr_matrix(adata.X).indptr) > max_len - 1).sum())
        ledger.record(
            "truncation",
            "cells",
            adata.n_obs,
            adata.n_obs,
            f"cells with more than {max_len - 1} expressed genes (max_len {max_len} "
            "with [CLS]), cut at tokenization as tokens.truncation says; counted over the dataset's genes, before the vocabulary",
            changed=long,
        )
    validate_dataset(adata, name)
    ledger.log()  # whatever the check says
    policy.check(ledger)
    if entry.response:
        if out_response is None:
            raise InputError(f"{name}: a drug-response dataset needs a path for its response table")
        with atomic_path(out_response) as tmp:
            response.to_csv(tmp, sep="\t", index=False)
    if out_ledger is not None:
        ledger.save(out_ledger)
    write_h5ad(adata, out_h5ad)
    return adata


def build_network(links, info, hgnc, out_tsv, out_ledger=None) -> pd.DataFrame:
    """STRING's links and protein info as the interaction table results/data/{STRING_EDGES}.tsv, in today's
    HGNC symbols, with its ledger (proteins without a symbol, links, interactions between two genes)."""
    from ingest.sources.string_ppi import parse_string

    ledger = Ledger(STRING_EDGES)
    edges = parse_string(links, info, ledger=ledger)
    mapped = GeneSymbols.from_hgnc(hgnc).harmonise_edges(edges, str(links))
    ledger.record(
        "symbols",
        "interactions",
        len(edges),
        len(mapped),
        "gene pairs in today's HGNC symbols (pairs that meet on one symbol, "
        "or with a gene HGNC does not know, dropped; the best score kept per pair)",
    )
    ledger.log()
    if out_ledger is not None:
        ledger.save(out_ledger)
    with atomic_path(out_tsv) as tmp:
        mapped.to_csv(tmp, sep="\t", index=False)
    return mapped


SOURCE_COLUMNS = ["id", "file", "url", "format", "sha256", "citation_licence", "source_of_facts"]


def _gdsc_cids(files) -> list[str]:
    from ingest.sources.gdsc import parse_gdsc_drug_list
    from ingest.sources.smiles import pubchem_cid_list

    return [pubchem_cid_list(parse_gdsc_drug_list(files["gdsc_drug_list"])["pubchem_cid"].dropna())]


def _unmatched_drug_names(files) -> list[str]:
    """The drug names GDSC's compound list gives no CID for: its own rows without one, and CCLE's
    compounds it does not list (by name or synonym). PubChem is asked for these by name."""
    from ingest.sources.ccle import parse_ccle_response
    from ingest.sources.gdsc import parse_gdsc_drug_list
    from ingest.structures import DrugStructures

    compounds = parse_gdsc_drug_list(files["gdsc_drug_list"])
    names = [*compounds.loc[compounds["pubchem_cid"].isna(), "drug"], *parse_ccle_response(files["ccle_response"])["drug"]]
    return DrugStructures(compounds, pd.DataFrame(columns=["pubchem_cid", "smiles"])).unmatched_names(names)


@dataclass(frozen=True)
class AddressField:
    """A {field} of an address in the source table, filled from other sources' files."""

    sources: tuple[str, ...]
    values: Callable[[dict[str, Path]], list[str]]  # files by source id -> the field's value(s)
    each: bool = False  # one request per value (PubChem takes one name per request), else exactly one value
    combine: Callable[[list[tuple[str, str | None]]], str] | None = None  # with `each`: the answers -> the file's text


# PubChem's CID query lists the CIDs of GDSC's compound list; its name queries ask for each
# drug name the list leaves without a CID.
ADDRESS_FIELDS: dict[str, AddressField] = {
    "pubchem_cids": AddressField(("gdsc_drug_list",), _gdsc_cids),
    "unmatched_drug_name": AddressField(
        ("gdsc_drug_list", "ccle_response"), _unmatched_drug_names, each=True, combine=lambda answers: _combine_name_answers(answers)
    ),
}


def _combine_name_answers(answers):
    from ingest.sources.smiles import combine_name_answers

    return combine_name_answers(answers)


def address_fields(url: str, where: str = "address") -> list[str]:
    """The {fields} of an address, in order; InputError naming `where` for an unknown one, or for
    more than one field that asks one request per value."""
    fields = [name for _, name, _, _ in string.Formatter().parse(url) if name is not None]
    unknown = [f for f in fields if f not in ADDRESS_FIELDS]
    if unknown:
        raise InputError(f"{where}: unknown field {{{unknown[0]}}} in address {url} (known: {', '.join(ADDRESS_FIELDS)})")
    if sum(ADDRESS_FIELDS[f].each for f in fields) > 1:
        raise InputError(f"{where}: address {url} has more than one field asked one value per request")
    return fields


def address_sources(url: str) -> list[str]:
    """The sources whose files fill an address's fields (none for a plain address)."""
    return list(dict.fromkeys(s for f in address_fields(url) for s in ADDRESS_FIELDS[f].sources))


def resolve_address(url: str, files: dict) -> list[tuple[str, str]]:
    """The address's requests, its fields filled from the files of `address_sources(url)` (source id ->
    path): one (value, address) per value of a field that asks one request per value, else
    [("", address)]. Values are quoted for a URL path."""
    values: dict[str, list[str]] = {}
    for name in address_fields(url):
        field = ADDRESS_FIELDS[name]
        absent = [s for s in field.sources if s not in files]
        if absent:
            raise InputError(f"address {url}: field {{{name}}} needs the file of source '{absent[0]}'")
        values[name] = field.values({s: Path(files[s]) for s in field.sources})
    each = next((name for name in values if ADDRESS_FIELDS[name].each), None)
    fixed = {name: quote(v[0], safe=",") for name, v in values.items() if name != each}
    if each is None:
        return [("", url.format(**fixed))]
    return [(value, url.format(**fixed, **{each: quote(value, safe="")})) for value in values[each]]


def fetch_source(url: str, files: dict, dest, *, sha256: str | None, lock, key: str) -> Path:
    """Download one row of the source table to `dest`: one request (`ingest.download.fetch`), or, where
    the address asks one request per value, all of them combined into one file (`fetch_each`)."""
    from ingest.download import fetch, fetch_each

    requests = resolve_address(url, files)
    each = next((ADDRESS_FIELDS[f] for f in address_fields(url) if ADDRESS_FIELDS[f].each), None)
    if each is None:
        return fetch(requests[0][1], dest, sha256=sha256, lock=lock, key=key)
    return fetch_each(requests, dest, each.combine, lock=lock, key=key)


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
            for needed in ADDRESS_FIELDS[field].sources:
                if needed not in table.index:
                    raise InputError(f"{path}: the address of '{source}' reads source '{needed}', which has no row")
    return table
