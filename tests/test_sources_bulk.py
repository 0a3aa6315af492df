"""Parsers of the bulk sources (GDSC, CCLE/DepMap, PubChem SMILES, STRING) on tiny files in the real formats.

These fixtures are written by this project (tests/fixtures/formats.py) from the layouts the
parser modules document, so they share the parsers' assumptions: the values are made up
but plausible, and cover the rules (duplicates, caps, layouts, bad inputs). The independent
check, every parser on real copies of the files, is tests/test_real_files.py.
"""

import numpy as np
import pandas as pd
import pytest

from benchmarks.tasks.data import read_response_table
from celllm.errors import InputError
from celllm.io import validate_dataset
from ingest.catalog import to_linear_scale
from ingest.ledger import Ledger
from ingest.response import assemble, to_models
from ingest.sources.ccle import parse_ccle_response
from ingest.sources.depmap import DepMapModels, parse_depmap_expression
from ingest.sources.gdsc import parse_gdsc_drug_list, parse_gdsc_expression, parse_gdsc_response
from ingest.sources.smiles import combine_name_answers, parse_pubchem_properties, pubchem_cid_list
from ingest.sources.string_ppi import parse_string
from ingest.structures import DrugStructures
from tests.fixtures.formats import (
    ccle_drug_row,
    gdsc_response_table,
    write_ccle_drug_data,
    write_depmap_expression,
    write_depmap_models,
    write_gdsc_drug_list,
    write_gdsc_expression,
    write_gdsc_response,
    write_pubchem,
    write_string_info,
    write_string_links,
    write_text,
)

# ----------------------------------------------------------------------------------------- PubChem

ASPIRIN = "CC(=O)OC1=CC=CC=C1C(=O)O"
ERLOTINIB = "COCCOC1=C(C=C2C(=C1)C(=NC=N2)NC3=CC=CC(=C3)C#C)OCCOC"
CAMPTOTHECIN = "CC[C@@]1(C2=C(COC1=O)C(=O)N3CC4=CC5=CC=CC=C5N=C4C3=C2)O"
CAMPTOTHECIN_FLAT = "CCC1(C2=C(COC1=O)C(=O)N3CC4=CC5=CC=CC=C5N=C4C3=C2)O"
CISPLATIN = "N.N.Cl[Pt]Cl"


def write_props(path, new_names=True, broken=False):
    camptothecin = "CC[C@@]1(C2=C(" if broken else CAMPTOTHECIN
    rows = [(176870, ERLOTINIB, ERLOTINIB), (24360, camptothecin, CAMPTOTHECIN_FLAT), (84691, CISPLATIN, CISPLATIN)]
    return write_pubchem(path, rows, new_names=new_names)


def test_pubchem_cid_list_is_unique_and_bounded():
    assert pubchem_cid_list([176870, "24360", 176870, 24360.0]) == "176870,24360"
    with pytest.raises(InputError, match="not a positive integer"):
        pubchem_cid_list(["aspirin"])
    with pytest.raises(InputError, match="too many"):
        pubchem_cid_list(range(1, 1002))


@pytest.mark.parametrize("new_names", [True, False])
def test_pubchem_properties_new_and_old_column_names(tmp_path, new_names):
    path = write_props(tmp_path / "props.csv", new_names=new_names)
    table = parse_pubchem_properties(path)
    assert list(table.columns) == ["pubchem_cid", "smiles"] and table["pubchem_cid"].tolist() == [176870, 24360, 84691]
    assert table.set_index("pubchem_cid").loc[24360, "smiles"] == CAMPTOTHECIN  # the full SMILES, with stereo
    flat = parse_pubchem_properties(path, prefer="connectivity")
    assert flat.set_index("pubchem_cid").loc[24360, "smiles"] == CAMPTOTHECIN_FLAT
    assert table["pubchem_cid"].dtype == np.int64


def test_pubchem_properties_bad_inputs_name_the_file_and_cid(tmp_path):
    bad = write_props(tmp_path / "bad.csv", broken=True)
    with pytest.raises(InputError, match=r"bad.csv: CID 24360: RDKit cannot parse"):
        parse_pubchem_properties(bad)
    (tmp_path / "nocid.csv").write_text('"Title","SMILES"\n"aspirin","CC"\n')
    with pytest.raises(InputError, match=r"nocid.csv: missing column\(s\) 'CID'"):
        parse_pubchem_properties(tmp_path / "nocid.csv")
    with pytest.raises(InputError, match="absent.csv: PUG-REST property table .* not found"):
        parse_pubchem_properties(tmp_path / "absent.csv")
    (tmp_path / "two.csv").write_text('"CID","SMILES"\n2244,"CC"\n2244,"CCC"\n')
    with pytest.raises(InputError, match="two.csv: CID 2244 is listed with different SMILES"):
        parse_pubchem_properties(tmp_path / "two.csv")


def test_name_answers_are_combined_with_their_query_and_unknown_names_kept(tmp_path):
    answers = [
        (
            "ZD-6474",
            '"CID","SMILES","ConnectivitySMILES"\n3081361,"CN1CCC(CC1)COC2=C(C=C3C(=C2)N=CN=C3NC4=C(C=C(C=C4)Br)F)OC","CN1CCC(CC1)COC2=C(C=C3C(=C2)N=CN=C3NC4=C(C=C(C=C4)Br)F)OC"\n',
        ),
        ("not-a-drug", None),
        ("Aspirin", f'"CID","SMILES","ConnectivitySMILES"\n2244,"{ASPIRIN}","{ASPIRIN}"\n'),
    ]
    path = tmp_path / "pubchem_names.csv"
    path.write_text(combine_name_answers(answers))
    table = parse_pubchem_properties(path, query=True)
    assert table["query"].tolist() == ["ZD-6474", "not-a-drug", "Aspirin"]
    assert table["pubchem_cid"].tolist()[0] == 3081361 and pd.isna(table["pubchem_cid"][1]) and table["smiles"][2] == ASPIRIN
    path.write_text(combine_name_answers([]))  # nothing left to ask: a header, no rows
    assert parse_pubchem_properties(path, query=True).empty


# -------------------------------------------------------------------------------------------- GDSC

GDSC2 = gdsc_response_table(
    "GDSC2",
    [
        (906826, "A549", 1168, "Erlotinib", 3.0),
        (906826, "A549", 1003, "Camptothecin", -1.5),
        (687983, "HCC827", 1168, "Erlotinib", -2.0),
        (687983, "HCC827", 1003, "Camptothecin", -1.0),
        (687983, "HCC827", 9999, "Unknownib", 1.0),  # no SMILES: dropped
    ],
)
GDSC1 = gdsc_response_table(
    "GDSC1",
    [
        (906826, "A549", 1, "Erlotinib", 5.0),  # also in GDSC2: GDSC2 wins
        (910927, "CAL-51", 1, "Erlotinib", 2.0),
        (910927, "CAL-51", 1005, "Cisplatin", 4.0),  # the same drug twice in one screen (two ids): averaged
        (910927, "CAL-51", 1006, "Cisplatin", 3.0),
    ],
)


def test_gdsc_response_from_csv_resolves_duplicates_and_counts_them(tmp_path):
    write_gdsc_response(tmp_path / "GDSC1_fitted_dose_response_27Oct23.csv", GDSC1)
    write_gdsc_response(tmp_path / "GDSC2_fitted_dose_response_27Oct23.csv", GDSC2)
    paths = [tmp_path / "GDSC1_fitted_dose_response_27Oct23.csv", tmp_path / "GDSC2_fitted_dose_response_27Oct23.csv"]
    ledger = Ledger("gdsc_rma")
    pairs = parse_gdsc_response(paths, ledger)
    assert list(pairs.columns) == ["cell_line", "drug", "ln_ic50", "cell_line_name", "sanger_model_id"]
    value = pairs.set_index(["cell_line", "drug"])["ln_ic50"]
    assert value[("906826", "Erlotinib")] == 3.0  # GDSC2 preferred over GDSC1
    assert value[("910927", "Cisplatin")] == 3.5  # two ids of one drug in one screen: mean ln IC50
    assert len(pairs) == 7 and not pairs.duplicated(["cell_line", "drug"]).any()
    steps = ledger.frame().set_index("step")
    assert steps.loc["read", "entered"] == 9 and steps.loc["duplicates", "kept"] == 7 and steps.loc["duplicates", "changed"] == 1
    assert pairs.set_index("cell_line")["cell_line_name"]["910927"].iloc[0] == "CAL-51"
    pooled = parse_gdsc_response(paths, prefer_dataset=None).set_index(["cell_line", "drug"])["ln_ic50"]
    assert pooled[("906826", "Erlotinib")] == 4.0


def test_gdsc_response_reads_xlsx(tmp_path):
    pytest.importorskip("openpyxl")
    write_gdsc_response(tmp_path / "GDSC2_fitted_dose_response_27Oct23.xlsx", GDSC2)
    pairs = parse_gdsc_response(tmp_path / "GDSC2_fitted_dose_response_27Oct23.xlsx")
    assert len(pairs) == 5 and set(pairs["cell_line"]) == {"906826", "687983"}


def test_gdsc_response_bad_inputs(tmp_path):
    broken = GDSC2.drop(columns=["LN_IC50"])
    write_gdsc_response(tmp_path / "nolnic50.csv", broken)
    with pytest.raises(InputError, match=r"nolnic50.csv: missing column\(s\) LN_IC50"):
        parse_gdsc_response(tmp_path / "nolnic50.csv")
    nan = GDSC2.copy()
    nan.loc[1, "LN_IC50"] = np.nan
    write_gdsc_response(tmp_path / "nan.csv", nan)
    with pytest.raises(InputError, match="nan.csv: 1 rows have a missing or non-numeric LN_IC50"):
        parse_gdsc_response(tmp_path / "nan.csv")
    write_gdsc_response(tmp_path / "empty.csv", GDSC2.iloc[:0])
    with pytest.raises(InputError, match="empty.csv: no dose-response rows"):
        parse_gdsc_response(tmp_path / "empty.csv")
    (tmp_path / "fake.xlsx").write_text("not a workbook")
    with pytest.raises(InputError, match=r"fake.xlsx: (reading .xlsx needs the openpyxl package|not a readable dose-response table)"):
        parse_gdsc_response(tmp_path / "fake.xlsx")
    with pytest.raises(InputError, match="gone.xlsx: GDSC dose-response file not found"):
        parse_gdsc_response(tmp_path / "gone.xlsx")
    lines = write_gdsc_response(tmp_path / "ok.csv", GDSC2).read_text().splitlines(keepends=True)
    (tmp_path / "short.csv").write_text(lines[0].replace("DATASET,", "", 1) + "".join(lines[1:]))  # a header one name short
    with pytest.raises(InputError, match="short.csv: its rows have 19 fields but its header names 18 columns"):
        parse_gdsc_response(tmp_path / "short.csv")
    (tmp_path / "bom.csv").write_text("\ufeff" + "".join(lines), encoding="utf-8")  # a byte-order mark before DATASET
    assert len(parse_gdsc_response(tmp_path / "bom.csv")) == 5


STRUCTURES = DrugStructures(
    pd.DataFrame(
        {
            "drug_id": ["1168", "1003", "1005", "1830"],
            "drug": ["Erlotinib", "Camptothecin", "Cisplatin", "Vandetanib"],
            "synonyms": [("Tarceva", "OSI-774"), (), (), ("ZD6474", "Zactima")],
            "pubchem_cid": pd.array([176870, 24360, 84691, None], dtype="Int64"),
        }
    ),
    pd.DataFrame({"pubchem_cid": [176870, 24360, 84691], "smiles": [ERLOTINIB, CAMPTOTHECIN, CISPLATIN]}),
    pd.DataFrame(
        {
            "query": ["Vandetanib", "Unknownib"],
            "pubchem_cid": pd.array([3081361, None], dtype="Int64"),
            "smiles": ["CN1CCC(CC1)COC2=C(C=C3C(=C2)N=CN=C3NC4=C(C=C(C=C4)Br)F)OC", ""],
        }
    ),
)


# a probe without a symbol, one symbol on two rows
GDSC_EXPRESSION = [
    ("TSPAN6", "tetraspanin 6 [Source:HGNC Symbol;Acc:11858]", [7.632023, 7.548671, 8.712338]),
    ("TNMD", "tenomodulin [Source:HGNC Symbol;Acc:17757]", [2.964585, 2.777716, 2.643508]),
    ("", "", [3.1, 3.2, 3.3]),
    (
        "DPM1",
        "dolichyl-phosphate mannosyltransferase polypeptide 1, catalytic subunit [Source:HGNC Symbol;Acc:3005]",
        [10.379553, 11.807341, 9.880733],
    ),
    ("DPM1", "duplicate probe set", [10.0, 11.0, 9.0]),
]
GDSC_COSMIC = [906826, 687983, 910927]


def test_gdsc_expression_follows_the_contract_and_matches_the_response_key(tmp_path):
    txt = write_gdsc_expression(tmp_path / "Cell_line_RMA_proc_basalExp.txt", GDSC_COSMIC, GDSC_EXPRESSION)
    write_gdsc_response(tmp_path / "GDSC2.csv", GDSC2)
    adata = parse_gdsc_expression(txt, names=tmp_path / "GDSC2.csv")
    assert adata.obs_names.tolist() == ["906826", "687983", "910927"]
    assert adata.obs["cell_line"].tolist() == adata.obs_names.tolist()
    assert adata.obs["cosmic_id"].tolist() == [906826, 687983, 910927]
    assert adata.obs["cell_line_name"].tolist() == ["A549", "HCC827", ""]
    assert adata.var_names.tolist() == ["DPM1", "TNMD", "TSPAN6"]
    assert adata.uns["value_scale"] == "rma_log2"
    dense = adata.to_df()
    assert dense.loc["906826", "DPM1"] == pytest.approx((10.379553 + 10.0) / 2, rel=1e-6)
    validate_dataset(
        to_linear_scale(adata, "gdsc"), "gdsc"
    )  # on the linear scale build_dataset gives it: CSR float32, finite, non-negative, unique genes

    # the zip that GDSC serves reads the same
    zipped = parse_gdsc_expression(write_gdsc_expression(tmp_path / "Cell_line_RMA_proc_basalExp.txt.zip", GDSC_COSMIC, GDSC_EXPRESSION))
    assert np.allclose(zipped.X.toarray(), adata.X.toarray())

    ledger = Ledger("gdsc_rma")
    lines, pairs = assemble(adata, parse_gdsc_response(tmp_path / "GDSC2.csv"), STRUCTURES, ledger, "GDSC")
    pairs.to_csv(tmp_path / "gdsc.response.tsv", sep="\t", index=False)
    table = read_response_table(tmp_path / "gdsc.response.tsv", lines)
    assert len(table) == len(pairs) == 4  # every cell line of the response has a profile: the keys match; Unknownib has no structure
    assert lines.obs_names.tolist() == ["906826", "687983"]  # 910927 has a profile but no pair: left out, and counted
    steps = ledger.frame()
    assert steps.loc[steps["step"] == "drug_structure", "lost_names"].iloc[0] == "Unknownib"
    assert steps.loc[steps["step"] == "unscreened", ["entered", "kept", "expected"]].values.tolist() == [[3, 2, "yes"]]


def test_gdsc_expression_bad_inputs(tmp_path):
    (tmp_path / "wrong.txt").write_text("SYMBOL\tDATA.1\nA\t1.0\n")
    with pytest.raises(InputError, match="wrong.txt: missing column GENE_SYMBOLS"):
        parse_gdsc_expression(tmp_path / "wrong.txt")
    write_gdsc_expression(tmp_path / "nan.txt", [1, 2], [("A", "a", [1.0, ""])])
    with pytest.raises(InputError, match=r"nan.txt: 1 expression values are missing .*DATA.2"):
        parse_gdsc_expression(tmp_path / "nan.txt")
    (tmp_path / "odd.txt").write_text("GENE_SYMBOLS\tGENE_title\tDATA.1\tCOSMIC_2\nA\ta\t1.0\t2.0\n")
    with pytest.raises(InputError, match="odd.txt: column 'COSMIC_2'"):
        parse_gdsc_expression(tmp_path / "odd.txt")
    write_gdsc_expression(tmp_path / "header.txt", [1], [])
    with pytest.raises(InputError, match="header.txt: no genes"):
        parse_gdsc_expression(tmp_path / "header.txt")
    with pytest.raises(InputError, match="missing.txt: GDSC expression file not found"):
        parse_gdsc_expression(tmp_path / "missing.txt")


def test_gdsc_drug_list_reads_names_synonyms_and_pubchem_ids(tmp_path):
    # the compounds page download: drug_id, Name, Synonyms, Targets, Target pathway, PubCHEM, ...
    write_gdsc_drug_list(
        tmp_path / "Drug_list.csv",
        [
            (1168, "Erlotinib", "Tarceva, RG-1415, CP-358774, OSI-774, Ro-508231, R-1415", "EGFR", "EGFR signaling", 176870, "GDSC2"),
            (1003, "Camptothecin", "", "TOP1", "DNA replication", 24360, "GDSC2"),
            (1005, "Cisplatin", "", "DNA crosslinker", "DNA replication", "84691, 5702198", "GDSC1"),
            (1006, "Cisplatin", "", "DNA crosslinker", "DNA replication", 84691, "GDSC2"),
            (1500, "Compound X", "", "unknown", "Other", "none", "GDSC2"),
            (1501, "Compound Y", "", "unknown", "Other", "several", "GDSC2"),
        ],
    )
    table = parse_gdsc_drug_list(tmp_path / "Drug_list.csv")
    assert table["drug"].tolist() == ["Erlotinib", "Camptothecin", "Cisplatin", "Compound X", "Compound Y"]
    assert table["pubchem_cid"].tolist()[:3] == [176870, 24360, 84691] and table["pubchem_cid"][3:].isna().all()  # kept, to ask PubChem
    assert (
        table["synonyms"][0] == ("Tarceva", "RG-1415", "CP-358774", "OSI-774", "Ro-508231", "R-1415") and table["drug_id"][2] == "1005;1006"
    )
    (tmp_path / "screened_compounds_rel_8.5.csv").write_text(
        "DRUG_ID,SCREENING_SITE,DRUG_NAME,SYNONYMS,TARGET,TARGET_PATHWAY\n1003,SANGER,Camptothecin,,TOP1,DNA replication\n"
    )
    with pytest.raises(InputError, match=r"screened_compounds_rel_8.5.csv: missing column\(s\) 'Name', 'PubCHEM'"):
        parse_gdsc_drug_list(tmp_path / "screened_compounds_rel_8.5.csv")


# -------------------------------------------------------------------------------------------- CCLE

PACLITAXEL = (
    "CC1=C2C(C(=O)C3(C(CC4C(C3C(C(C2(C)C)(CC1OC(=O)C(C(C5=CC=CC=C5)NC(=O)C6=CC=CC=C6)O)O)OC(=O)C7=CC=CC=C7)(CO4)OC(=O)C)O)C)OC(=O)C"
)


def write_drug_data(path, rows=None):
    rows = (
        rows
        if rows is not None
        else [
            ccle_drug_row("HELA_CERVIX", "HeLa", "Erlotinib", "EGFR", "8"),  # at the 8 uM cap
            ccle_drug_row("A549_LUNG", "A549", "Erlotinib", "EGFR", "2.5", ec50="1.9"),
            ccle_drug_row("A549_LUNG", "A549", "Paclitaxel", "TUBB1", ".012", ec50=".008"),
            ccle_drug_row("A549_LUNG", "A549", "ZD-6474", "EGFR", "3.6"),
            ccle_drug_row("SW480_LARGE_INTESTINE", "SW480", "L-685458", "GS", "8"),  # no DepMap model, no structure: dropped
        ]
    )
    return write_ccle_drug_data(path, rows)


def test_ccle_response_converts_and_counts_both_assay_limits(tmp_path):
    rows = [
        ccle_drug_row("HELA_CERVIX", "HeLa", "Erlotinib", "EGFR", "8"),  # at the 8 uM cap
        ccle_drug_row("A549_LUNG", "A549", "Erlotinib", "EGFR", "2.5", ec50="1.9"),
        ccle_drug_row("A549_LUNG", "A549", "Paclitaxel", "TUBB1", ".0025", ec50=".001"),  # at the 0.0025 uM floor
        ccle_drug_row("A549_LUNG", "A549", "ZD-6474", "EGFR", "3.6"),
    ]
    path = write_drug_data(tmp_path / "CCLE_NP24.2009_Drug_data_2015.02.24.csv", rows)
    ledger = Ledger("ccle")
    pairs = parse_ccle_response(path, ledger)
    assert list(pairs.columns) == ["ccle_name", "primary_name", "drug", "ln_ic50"]
    value = pairs.set_index(["ccle_name", "drug"])["ln_ic50"]
    assert value[("A549_LUNG", "Erlotinib")] == pytest.approx(np.log(2.5))
    assert value[("HELA_CERVIX", "Erlotinib")] == pytest.approx(np.log(8.0))  # censored, kept at ln 8
    assert value[("A549_LUNG", "Paclitaxel")] == pytest.approx(np.log(0.0025))
    censoring = ledger.frame().set_index("step").loc["censoring"]
    assert censoring["changed"] == 2 and "1 at the 8 µM cap and 1 at the 0.0025 µM floor" in censoring["detail"]
    dropped = parse_ccle_response(path, censored="drop")
    assert set(zip(dropped["ccle_name"], dropped["drug"])) == {("A549_LUNG", "Erlotinib"), ("A549_LUNG", "ZD-6474")}


def test_ccle_response_bad_inputs(tmp_path):
    (tmp_path / "renamed.csv").write_text('"Cell Line","Compound","IC50"\n"A549_LUNG","Erlotinib",2.5\n')
    with pytest.raises(InputError, match=r"renamed.csv: missing column\(s\) 'CCLE Cell Line Name', 'IC50 \(uM\)'"):
        parse_ccle_response(tmp_path / "renamed.csv")
    write_drug_data(tmp_path / "na.csv", [ccle_drug_row("A549_LUNG", "A549", "Erlotinib", "EGFR", "NA")])
    with pytest.raises(InputError, match=r"na.csv: 1 rows have a missing, non-numeric or non-positive 'IC50 \(uM\)'"):
        parse_ccle_response(tmp_path / "na.csv")
    write_drug_data(tmp_path / "header_only.csv", [])
    with pytest.raises(InputError, match="header_only.csv: no drug-response rows"):
        parse_ccle_response(tmp_path / "header_only.csv")


MODELS = [
    ("ACH-000001", "NIH:OVCAR-3", "OVCAR3_OVARY", "905933"),
    ("ACH-000681", "A549", "A549_LUNG", "905949"),
    ("ACH-001086", "HeLa", "HELA_CERVIX", ""),
    ("ACH-003000", "PDO-1", "", ""),
]  # an organoid without CCLE name


GENES = ["TSPAN6 (7105)", "TNMD (64102)", "DPM1 (8813)"]
VALUES = {"ACH-000001": [4.33, 0.0, 7.1], "ACH-000681": [3.1, 0.2, 6.5], "ACH-001086": [5.2, 0.0, 6.9], "ACH-003000": [1.0, 1.0, 1.0]}


def test_depmap_expression_old_layout_is_keyed_by_model(tmp_path):
    # up to 24Q2: OmicsExpressionProteinCodingGenesTPMLogp1.csv, first column unnamed = ModelID
    write_depmap_expression(tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv", GENES, VALUES.items())
    models = DepMapModels.read(write_depmap_models(tmp_path / "Model.csv", MODELS))
    adata = parse_depmap_expression(tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv", models, "ccle")
    assert adata.obs_names.tolist() == ["ACH-000001", "ACH-000681", "ACH-001086", "ACH-003000"]  # every profile, named or not
    assert adata.obs["ccle_name"].tolist() == ["OVCAR3_OVARY", "A549_LUNG", "HELA_CERVIX", ""]
    assert adata.var_names.tolist() == ["DPM1", "TNMD", "TSPAN6"] and adata.var["entrez_id"].tolist() == [8813, 64102, 7105]
    assert adata.to_df().loc["ACH-000681", "TSPAN6"] == pytest.approx(3.1)
    assert adata.uns["value_scale"] == "log2_tpm_plus_1"
    validate_dataset(to_linear_scale(adata, "ccle"), "ccle")


def test_depmap_expression_new_layout_keeps_default_entries_and_matches_the_response(tmp_path):
    # 25Q2+: OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv, one row per sequencing, metadata columns first
    rows = [(model, values, True) for model, values in VALUES.items()] + [("ACH-000681", [9.0, 9.0, 9.0], False)]  # a non-default profile
    write_depmap_expression(tmp_path / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv", GENES, rows, layout="new")
    models = DepMapModels.read(write_depmap_models(tmp_path / "Model.csv", MODELS))
    ledger = Ledger("ccle")
    adata = parse_depmap_expression(tmp_path / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv", models, "ccle", ledger)
    assert adata.to_df().loc["ACH-000681", "TSPAN6"] == pytest.approx(3.1)  # not the 9.0 of the non-default profile

    pairs = parse_ccle_response(write_drug_data(tmp_path / "drug.csv"), ledger)
    lines = pairs.drop_duplicates("ccle_name")
    pairs = to_models(
        pairs, "ccle_name", models.match(ccle_names=lines["ccle_name"].tolist(), names=lines["primary_name"].tolist()), ledger, "CCLE"
    )
    asked = pd.DataFrame({"query": ["Paclitaxel"], "pubchem_cid": pd.array([36314], dtype="Int64"), "smiles": [PACLITAXEL]})
    structures = DrugStructures(STRUCTURES.compounds, STRUCTURES.smiles_by_cid, pd.concat([STRUCTURES.by_name, asked], ignore_index=True))
    lines, response = assemble(adata, pairs, structures, ledger, "CCLE")
    response.to_csv(tmp_path / "ccle.response.tsv", sep="\t", index=False)
    table = read_response_table(tmp_path / "ccle.response.tsv", lines)
    # ZD-6474 is a synonym of the list's Vandetanib, which has no CID: PubChem's answer for 'Vandetanib' gives it its structure
    assert set(table["cell_line"]) == {"ACH-000681", "ACH-001086"} and len(table) == 4
    steps = ledger.frame()
    lost = steps[(steps["step"] == "cell_line_model") & (steps["unit"] == "cell_lines")].iloc[0]
    assert (lost["entered"], lost["kept"]) == (3, 2) and lost["lost_names"] == "SW480_LARGE_INTESTINE (no model)"
    drugs = steps[(steps["step"] == "drug_structure") & (steps["unit"] == "drugs")].iloc[0]
    assert (
        "1 by compound list name, 0 by compound list synonym, 2 by PubChem name" in drugs["detail"] and drugs["entered"] == 3
    )  # L-685458 left with SW480


def test_depmap_bad_inputs(tmp_path):
    models = DepMapModels.read(write_depmap_models(tmp_path / "Model.csv", MODELS))
    pd.DataFrame({"ModelID": ["ACH-000001"], "CellLineName": ["x"]}).to_csv(tmp_path / "NoName.csv", index=False)
    with pytest.raises(InputError, match=r"NoName.csv: missing column\(s\) 'CCLEName'"):
        DepMapModels.read(tmp_path / "NoName.csv")
    write_depmap_expression(tmp_path / "nan.csv", GENES, {**VALUES, "ACH-000681": [3.1, 0.2, np.nan]}.items())
    with pytest.raises(InputError, match=r"nan.csv: 1 expression values are missing .*ACH-000681, DPM1 \(8813\)"):
        parse_depmap_expression(tmp_path / "nan.csv", models, "ccle")
    pd.DataFrame({"gene": ["A"], "x": [1.0]}).to_csv(tmp_path / "notdepmap.csv", index=False)
    with pytest.raises(InputError, match="notdepmap.csv: neither a ModelID column"):
        parse_depmap_expression(tmp_path / "notdepmap.csv", models, "ccle")


# ------------------------------------------------------------------------------------------ STRING

STRING_PROTEINS = [
    ("9606.ENSP00000000233", "ARF5", 180, "ADP-ribosylation factor 5; GTP-binding protein that functions as an allosteric activator"),
    ("9606.ENSP00000000412", "M6PR", 277, 'Cation-dependent mannose-6-phosphate receptor; "Transport of phosphorylated lysosomal enzymes"'),
    ("9606.ENSP00000001008", "FKBP4", 459, "Peptidyl-prolyl cis-trans isomerase FKBP4"),
    ("9606.ENSP00000002125", "FKBP4", 300, "an isoform listed under the same gene"),
    ("9606.ENSP00000001146", "CYP26B1", 512, "Cytochrome P450 26B1"),
]
STRING_LINKS = [
    ("9606.ENSP00000000233", "9606.ENSP00000000412", 400),
    ("9606.ENSP00000000412", "9606.ENSP00000000233", 400),
    ("9606.ENSP00000000233", "9606.ENSP00000001008", 900),
    ("9606.ENSP00000002125", "9606.ENSP00000000233", 950),  # another protein of FKBP4: the pair keeps 950
    ("9606.ENSP00000001008", "9606.ENSP00000002125", 999),  # FKBP4-FKBP4 after merging: a self loop, dropped
    ("9606.ENSP00000001146", "9606.ENSP00000000412", 151),
    ("9606.ENSP00000009999", "9606.ENSP00000000233", 800),  # not in the info file: dropped
]


def string_files(tmp_path, links=STRING_LINKS):
    info = write_string_info(tmp_path / "9606.protein.info.v12.0.txt.gz", STRING_PROTEINS)
    return write_string_links(tmp_path / "9606.protein.links.v12.0.txt.gz", links), info


def test_string_gives_one_row_per_gene_pair(tmp_path):
    links, info = string_files(tmp_path)
    ledger = Ledger("string_human")
    edges = parse_string(links, info, ledger=ledger)
    assert ledger.frame().set_index("step").loc["links", ["entered", "kept"]].tolist() == [7, 6]
    assert list(edges.columns) == ["gene_a", "gene_b", "score"]
    assert edges.values.tolist() == [["ARF5", "FKBP4", 950], ["ARF5", "M6PR", 400], ["CYP26B1", "M6PR", 151]]
    high = parse_string(links, info, min_score=400)
    assert high[["gene_a", "gene_b"]].values.tolist() == [["ARF5", "FKBP4"], ["ARF5", "M6PR"]]

    # the table feeds the PPI pipeline as it is
    from celllm.ppi.graph import build_gene_graph

    graph = build_gene_graph(edges, ["ARF5", "M6PR", "FKBP4", "CYP26B1", "TP53"], min_score=0, source="string")
    assert graph.edge_index.shape[1] == 6


def test_string_bad_inputs(tmp_path):
    links, info = string_files(tmp_path)
    write_text(links, "protein1\tprotein2\tcombined_score\n9606.ENSP00000000233\t9606.ENSP00000000412\t400\n")  # tabs, not spaces
    with pytest.raises(InputError, match=r"9606.protein.links.v12.0.txt.gz: missing column\(s\)"):
        parse_string(links, info)
    links, info = string_files(tmp_path, links=[("9606.ENSP00000000233", "9606.ENSP00000000412", "high")])
    with pytest.raises(InputError, match="links.v12.0.txt.gz: 1 combined_score values are missing or not numbers"):
        parse_string(links, info)
    links, info = string_files(tmp_path)
    with pytest.raises(InputError, match="links.v12.0.txt.gz: no interaction .* score >= 1000"):
        parse_string(links, info, min_score=1000)
    bad_info = write_text(tmp_path / "info.txt.gz", "string_protein_id preferred_name\n9606.ENSP00000000233 ARF5\n")
    with pytest.raises(InputError, match=r"info.txt.gz: missing column\(s\) #string_protein_id"):
        parse_string(links, bad_info)
    with pytest.raises(InputError, match="nothere.txt.gz: STRING links file not found"):
        parse_string(tmp_path / "nothere.txt.gz", info)
