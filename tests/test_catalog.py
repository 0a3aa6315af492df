"""Real datasets: the source table, the catalog and the build step (on tiny files in the real formats)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from ingest.catalog import CATALOG, address_sources, build_dataset, read_sources, resolve_address, to_linear_scale
from ingest.ledger import Accepted, LossPolicy
from tests.fixtures.formats import HGNC_GENES, ccle_drug_row, write_ccle_drug_data, write_gdsc_drug_list, write_hgnc

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_every_catalog_source_is_in_the_source_table():
    sources = read_sources(ROOT / "config" / "datasets.tsv")
    for entry in CATALOG.values():
        for source in entry.sources:
            assert source in sources.index, (entry.name, source)
    assert {"hgnc", "string_links", "string_info"} <= set(sources.index)
    assert all(url.startswith(("https://", "manual:https://")) for url in sources["url"])
    assert all(len(s) == 64 or s == "-" for s in sources["sha256"])


def test_source_table_errors_are_named(tmp_path):
    (tmp_path / "d.tsv").write_text("id\tfile\nx\ty\n")
    with pytest.raises(InputError, match="d.tsv: missing column"):
        read_sources(tmp_path / "d.tsv")
    header = "id\tfile\turl\tformat\tsha256\tcitation_licence\tsource_of_facts\n"
    (tmp_path / "typo.tsv").write_text(header + "p\tp.csv\thttps://x/{pubchem_cid}/CSV\tcsv\t-\tc\ts\n")
    with pytest.raises(InputError, match=r"typo.tsv: row 'p': unknown field \{pubchem_cid\}"):
        read_sources(tmp_path / "typo.tsv")
    (tmp_path / "orphan.tsv").write_text(header + "p\tp.csv\thttps://x/{pubchem_cids}/CSV\tcsv\t-\tc\ts\n")
    with pytest.raises(InputError, match="orphan.tsv: the address of 'p' reads source 'gdsc_drug_list', which has no row"):
        read_sources(tmp_path / "orphan.tsv")


def test_pubchem_address_is_filled_with_the_cids_of_the_gdsc_drug_list(tmp_path):
    sources = read_sources(ROOT / "config" / "datasets.tsv")
    url = sources.loc["pubchem_smiles", "url"]
    assert address_sources(url) == ["gdsc_drug_list"] and address_sources(sources.loc["hgnc", "url"]) == []
    drugs = write_gdsc_drug_list(
        tmp_path / "Drug_list.csv",
        [
            (1168, "Erlotinib", "", "EGFR", "EGFR signaling", 176870, "GDSC2"),
            (1003, "Camptothecin", "", "TOP1", "DNA replication", 24360, "GDSC2"),
        ],
    )
    assert resolve_address(url, {"gdsc_drug_list": drugs}) == [
        ("", "https://pubchem.ncbi.nlm.nih.gov/rest/pug/compound/cid/176870,24360/property/SMILES,ConnectivitySMILES/CSV")
    ]
    with pytest.raises(InputError, match="needs the file of source 'gdsc_drug_list'"):
        resolve_address(url, {})


def test_pubchem_is_asked_by_name_for_each_drug_the_compound_list_gives_no_cid(tmp_path):
    sources = read_sources(ROOT / "config" / "datasets.tsv")
    url = sources.loc["pubchem_names", "url"]
    assert address_sources(url) == ["gdsc_drug_list", "ccle_response"]
    drugs = write_gdsc_drug_list(
        tmp_path / "Drug_list.csv",
        [
            (1168, "Erlotinib", "OSI-774", "EGFR", "EGFR signaling", 176870, "GDSC2"),
            (1808, "Topotecan", "", "", "DNA replication", "", "GDSC2"),
            (1830, "Vandetanib", "ZD6474", "VEGFR", "RTK signaling", "none", "GDSC1"),
        ],
    )
    ccle = write_ccle_drug_data(
        tmp_path / "ccle.csv",
        [ccle_drug_row("A549_LUNG", "A549", name, "t", "1") for name in ("OSI-774", "ZD-6474", "Nutlin-3", "Panobinostat / LBH589")],
    )
    requests = resolve_address(url, {"gdsc_drug_list": drugs, "ccle_response": ccle})
    # the list's drugs without a CID, then CCLE's compounds the list does not give a CID (OSI-774 is Erlotinib's synonym)
    assert [value for value, _ in requests] == ["Topotecan", "Vandetanib", "Nutlin-3", "Panobinostat / LBH589", "ZD-6474"]
    assert requests[-2][1] == (
        "https://pubchem.ncbi.nlm.nih.gov/rest/pug/compound/name/Panobinostat%20%2F%20LBH589/property/SMILES,ConnectivitySMILES/CSV"
    )  # one path segment, quoted


def test_log_scale_sources_return_to_a_linear_scale():
    adata = ad.AnnData(np.array([[0.0, 1.0, 3.0]], dtype=np.float32), uns={"value_scale": "log2_tpm_plus_1"})
    out = to_linear_scale(adata, "toy")
    assert np.allclose(out.X.toarray(), [[0.0, 1.0, 7.0]]) and out.uns["value_scale"] == "tpm" and sp.issparse(out.X)


def test_build_dataset_harmonises_genes_validates_and_writes(tmp_path, monkeypatch):
    write_hgnc(tmp_path / "hgnc.txt", HGNC_GENES)
    toy = ad.AnnData(
        sp.csr_matrix(np.array([[1, 2, 0], [0, 3, 4]], dtype=np.float32)),
        obs=pd.DataFrame({"cell_type": ["a", "b"]}, index=["c1", "c2"]),
        var=pd.DataFrame(index=["SEPT7", "ENSG00000121410", "NOVEL1"]),
    )
    from ingest import catalog

    entry = catalog.RealDataset("toy", ("toy_file",), lambda files, ledger: toy)
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    out = build_dataset(
        "toy",
        {"toy_file": tmp_path / "raw"},
        tmp_path / "hgnc.txt",
        tmp_path / "toy.h5ad",
        out_ledger=tmp_path / "toy.ledger.tsv",
        max_len=3,
    )
    written = ad.read_h5ad(tmp_path / "toy.h5ad")
    assert list(written.var_names) == ["A1BG", "NOVEL1", "SEPTIN7"] == list(out.var_names)
    ledger = pd.read_csv(tmp_path / "toy.ledger.tsv", sep="\t", keep_default_na=False).set_index("step")
    assert ledger.loc["symbols", ["entered", "kept", "changed"]].tolist() == [3, 3, 2]  # SEPT7 and the Ensembl id renamed
    assert ledger.loc["truncation", ["entered", "kept", "changed"]].tolist() == [2, 2, 0]  # no cell has more than 2 genes
    with pytest.raises(InputError, match="toy: missing downloaded file"):
        build_dataset("toy", {}, tmp_path / "hgnc.txt", tmp_path / "again.h5ad")
    assert not (tmp_path / "again.h5ad").exists()


def test_string_edges_in_approved_symbols(tmp_path):
    write_hgnc(tmp_path / "hgnc.txt", HGNC_GENES)
    edges = pd.DataFrame(
        {
            "gene_a": ["SEPT7", "MARCHF1", "SEPTIN7", "A1BG"],
            "gene_b": ["MARCH1", "SEPTIN7", "SEPTIN7", "ENSG00000999999"],
            "score": [500, 900, 999, 700],
        }
    )
    out = GeneSymbols.from_hgnc(tmp_path / "hgnc.txt").harmonise_edges(edges)
    assert out.to_dict("records") == [{"gene_a": "MARCHF1", "gene_b": "SEPTIN7", "score": 900}]


def test_a_parse_that_loses_more_than_allowed_stops_naming_the_step_and_writes_nothing(tmp_path, monkeypatch):
    write_hgnc(tmp_path / "hgnc.txt", HGNC_GENES)
    lines = ad.AnnData(
        sp.csr_matrix(np.array([[3, 5], [2, 7]], dtype=np.float32)),
        obs=pd.DataFrame(index=["L1", "L2"]),
        var=pd.DataFrame(index=["A1BG", "NOVEL1"]),
    )
    pairs = pd.DataFrame({"cell_line": ["L1", "L2"], "drug": ["Erlotinib", "Unknownib"], "smiles": ["C", "C"], "ln_ic50": [1.0, 2.0]})

    def build(files, ledger):  # a join that finds a structure for one drug of two
        ledger.record("drug_structure", "drugs", 2, 1, "no structure", ["Unknownib"])
        return lines, pairs.iloc[:1]

    from ingest import catalog

    monkeypatch.setitem(catalog.CATALOG, "toy", catalog.RealDataset("toy", ("toy_file",), build, response=True))
    outputs = {"out_h5ad": tmp_path / "toy.h5ad", "out_response": tmp_path / "toy.response.tsv", "out_ledger": tmp_path / "toy.ledger.tsv"}
    with pytest.raises(
        InputError,
        match=r"toy: step 'drug_structure' lost 1 of 2 drugs \(50.0%, above the 1% allowed; no structure\): Unknownib; "
        r"accept it with data.accept.toy.drug_structure",
    ):
        build_dataset("toy", {"toy_file": tmp_path}, tmp_path / "hgnc.txt", **outputs)
    assert not any(path.exists() for path in outputs.values())
    accepted = LossPolicy(0.01, {"toy": {"drug_structure": Accepted(0.5, "a drug unknown anywhere")}})
    build_dataset("toy", {"toy_file": tmp_path}, tmp_path / "hgnc.txt", **outputs, policy=accepted)
    assert all(path.exists() for path in outputs.values())


def test_loss_policy_from_config_refuses_unknown_steps_and_missing_reasons():
    policy = LossPolicy.from_config(
        {"max_loss": 0.02, "accept": {"ccle": {"cell_line_model": {"max_loss": 0.1, "reason": "renamed lines"}}}}
    )
    assert policy.allowed("ccle", "cell_line_model") == 0.1 and policy.allowed("ccle", "drug_structure") == 0.02
    with pytest.raises(InputError, match="config: data.accept.ccle.drug_structres: unknown step 'drug_structres'"):
        LossPolicy.from_config({"accept": {"ccle": {"drug_structres": {"max_loss": 0.1, "reason": "x"}}}})
    with pytest.raises(InputError, match="config: data.accept.ccle.drug_structure: give exactly max_loss"):
        LossPolicy.from_config({"accept": {"ccle": {"drug_structure": {"max_loss": 0.1}}}})
    with pytest.raises(InputError, match="config: data.max_loss: expected a fraction"):
        LossPolicy.from_config({"max_loss": 5})


def test_a_ledger_lists_every_lost_drug_and_the_error_the_first_ten():
    from ingest.ledger import Ledger

    ledger = Ledger("toy")
    ledger.record("drug_structure", "drugs", 100, 70, "no structure", [f"D{i:02d}" for i in range(30)])
    assert ledger.frame()["lost_names"].iloc[0].count(";") == 29  # all 30, sorted
    with pytest.raises(InputError, match=r"lost 30 of 100 drugs .*: D00; D01; .*; D09; \.\.\. 20 more; accept it") as error:
        LossPolicy().check(ledger)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="unknown ledger step 'drug_structures'"):
        ledger.record("drug_structures", "drugs", 1, 1)
