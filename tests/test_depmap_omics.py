"""Cell-line mutation and copy number over TGSA's genes, on real excerpts of the three files.

The DepMap excerpts are real values: DepMap's OmicsCNGene.csv and OmicsSomaticMutationsMatrixDamaging.csv
(most likely 24Q4) cut to 29 and 28 genes by the MED263_Final_Project_WI25 repository's own script, which
also named the unnamed first column 'ModelID'; TGSA's mu.csv is its header and first rows as released.
tests/data/real/{depmap_copy_number,depmap_mutations,tgsa_genes}/PROVENANCE.md name the commits and list
the values asserted here, read off the files by hand. Written here, and said so where used: the HGNC
table (the excerpts' symbols and Entrez ids; no real HGNC copy holding these genes could be read), and
the broken headers.
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celllm.errors import InputError
from celllm.genes import GeneSymbols
from celllm.io import write_h5ad
from ingest.ledger import Ledger
from ingest.omics import attach_omics
from ingest.sources.depmap import GENE_COLUMN, parse_depmap_copy_number, parse_depmap_mutations
from ingest.sources.tgsa import gene_symbols, parse_tgsa_genes
from tests.fixtures.formats import HgncGene, write_hgnc

REAL = Path(__file__).resolve().parent / "data" / "real"
COPY_NUMBER = REAL / "depmap_copy_number" / "MED263_Final_Project_WI25" / "OmicsCNGene.csv"
MUTATIONS = REAL / "depmap_mutations" / "MED263_Final_Project_WI25" / "OmicsSomaticMutationsMatrixDamaging.csv"
TGSA = REAL / "tgsa_genes" / "TGSA" / "mu.csv"
# TGSA's genes in both excerpts, in TGSA's order (its header sorts the Entrez ids as text: (1019) before (1021) ...)
BOTH = [
    "CDK4",
    "CDK6",
    "CDKN2A",
    "CTCF",
    "CTNNB1",
    "EGFR",
    "ERBB2",
    "ALK",
    "APC",
    "IDH1",
    "IDH2",
    "KRAS",
    "SMAD4",
    "MET",
    "NF1",
    "NF2",
    "NOTCH1",
    "NOTCH2",
    "PIK3CA",
    "PTEN",
    "RB1",
    "BRCA1",
    "BRAF",
    "BRCA2",
    "TP53",
    "ARID1A",
]
NO_MUTATION_ROW = ["ACH-000974", "ACH-003071", "ACH-001338"]  # in the copy-number excerpt only
NO_COPY_NUMBER_ROW = [
    "ACH-000062",
    "ACH-001949",
    "ACH-000402",
    "ACH-000693",
    "ACH-000930",
    "ACH-001691",
    "ACH-000956",
    "ACH-002532",
    "ACH-000776",
    "ACH-000574",
]  # in the mutation excerpt only


def excerpt_hgnc(tmp_path, renamed: dict[str, str] | None = None) -> GeneSymbols:
    """Written here: an HGNC table of the copy-number excerpt's genes (symbol and Entrez id as its header gives them),
    a symbol replaced where `renamed` says (as HGNC renames a gene after a DepMap release)."""
    header = COPY_NUMBER.read_text().splitlines()[0].split(",")[1:]
    named = [GENE_COLUMN.match(c) for c in header]
    genes = [HgncGene((renamed or {}).get(m["symbol"], m["symbol"]), "", int(m["entrez"])) for m in named]
    return GeneSymbols.from_hgnc(write_hgnc(tmp_path / "hgnc_complete_set.txt", genes))


@pytest.fixture
def genes(tmp_path):
    symbols, unnamed = gene_symbols(parse_tgsa_genes(TGSA), excerpt_hgnc(tmp_path))
    return symbols, unnamed


def test_tgsa_genes_are_the_706_entrez_ids_of_its_header():
    entrez = parse_tgsa_genes(TGSA)
    assert len(entrez) == 706 and len(set(entrez)) == 706
    assert entrez[:3] == [10000, 10006, 10019] and entrez[-3:] == [9967, 9968, 999]  # sorted as text, as TGSA wrote them
    assert 7157 in entrez and 4609 in entrez and 4854 not in entrez  # TP53 and MYC; NOTCH3 is no TGSA gene
    rows = pd.read_csv(TGSA, index_col=0)  # the rows (unused by the parser): binary, three models
    assert rows.index.tolist() == ["ACH-000001", "ACH-000002", "ACH-000006"] and rows.sum(axis=1).tolist() == [16, 16, 15]
    assert rows["(7157)"].tolist() == [1, 0, 1]


def test_tgsa_genes_are_named_by_todays_hgnc_symbol(genes):
    symbols, unnamed = genes
    assert len(symbols) == 27 and len(unnamed) == 706 - 27  # the excerpt's table knows its 29 genes, 27 of them TGSA's
    assert symbols[7157] == "TP53" and symbols[4609] == "MYC" and symbols.index.tolist()[:3] == [1019, 1021, 1029]


def test_copy_number_excerpt_read_by_entrez_id(genes):
    symbols, _ = genes
    cn = parse_depmap_copy_number(COPY_NUMBER, symbols)
    assert cn.shape == (30, 27) and cn.index[0] == "ACH-000628" and cn.index[-1] == "ACH-000334"
    assert cn.columns.tolist() == [s for s in symbols if s in BOTH or s == "MYC"] and (cn.dtypes == np.float32).all()
    assert cn.loc["ACH-000628", "EGFR"] == pytest.approx(2.53456295693235, rel=1e-6)
    assert cn.loc["ACH-001608", "CDKN2A"] == pytest.approx(1.5342938902090455e-09, rel=1e-6)  # written with an exponent
    assert cn.loc["ACH-001201", "MYC"] == pytest.approx(97.33211502333312, rel=1e-6)  # an amplification, as given
    assert not cn.isna().any().any()


def test_mutation_excerpt_read_as_depmap_gives_it(genes):
    symbols, _ = genes
    mutations = parse_depmap_mutations(MUTATIONS, symbols)
    assert mutations.shape == (37, 26) and mutations.columns.tolist() == BOTH  # the excerpt has no MYC column
    assert mutations.loc["ACH-000062", "TP53"] == 2.0  # summed allele frequency above 0.95
    row = mutations.loc["ACH-000956"]
    assert row[row > 0].to_dict() == {"NOTCH2": 2.0, "BRCA2": 1.0, "TP53": 2.0, "ARID1A": 1.0}  # NOTCH4 1.0 too, no TGSA gene


def test_columns_are_chosen_by_entrez_id_and_named_by_hgnc(tmp_path):
    # written here: an HGNC table in which NF2 (Entrez 4771) has a new symbol, as after a rename
    symbols, _ = gene_symbols(parse_tgsa_genes(TGSA), excerpt_hgnc(tmp_path, {"NF2": "NF2NEW"}))
    cn = parse_depmap_copy_number(COPY_NUMBER, symbols)
    assert "NF2NEW" in cn.columns and "NF2" not in cn.columns
    assert cn.loc["ACH-000628", "NF2NEW"] == pytest.approx(0.689613059147855, rel=1e-6)


def test_the_unnamed_first_column_as_depmap_writes_it(tmp_path, genes):
    # the repository's script renamed DepMap's empty first header field to 'ModelID'; written back here
    symbols, _ = genes
    text = COPY_NUMBER.read_text()
    unnamed = tmp_path / "OmicsCNGene.csv"
    unnamed.write_text(text[len("ModelID") :])
    pd.testing.assert_frame_equal(parse_depmap_copy_number(unnamed, symbols), parse_depmap_copy_number(COPY_NUMBER, symbols))


def _lines() -> ad.AnnData:
    names = [*pd.read_csv(COPY_NUMBER, usecols=[0]).iloc[:, 0], *NO_COPY_NUMBER_ROW, "ACH-999999"]
    return ad.AnnData(
        sp.csr_matrix(np.ones((len(names), 2), dtype=np.float32)), obs=pd.DataFrame(index=names), var=pd.DataFrame(index=["A", "B"])
    )


def test_omics_attached_to_every_cell_line_with_nan_rows_and_counted(genes, tmp_path):
    symbols, unnamed = genes
    ledger = Ledger("gdsc_depmap")
    lines = _lines()
    out = attach_omics(
        lines, parse_depmap_mutations(MUTATIONS, symbols), parse_depmap_copy_number(COPY_NUMBER, symbols), symbols, unnamed, ledger
    )
    mutation, copy_number = out.obsm["mutation"], out.obsm["copy_number"]
    for frame in (mutation, copy_number):
        assert isinstance(frame, pd.DataFrame) and frame.index.equals(lines.obs_names) and frame.columns.tolist() == BOTH
        assert (frame.dtypes == np.float32).all()
    assert out.uns["cell_line_omics"]["entrez_id"].tolist()[:3] == [1019, 1021, 1029]
    assert mutation.loc[NO_MUTATION_ROW + ["ACH-999999"]].isna().all().all() and copy_number.loc[NO_COPY_NUMBER_ROW].isna().all().all()
    assert set(np.unique(mutation.dropna().to_numpy())) == {0.0, 1.0}
    assert mutation.loc["ACH-000062", "TP53"] == 1.0 and copy_number.loc["ACH-000628", "EGFR"] == pytest.approx(2.5345630)

    steps = ledger.frame().set_index(["step", "unit"])
    genes_row, lines_row, calls = (steps.loc[("cell_line_omics", unit)] for unit in ("genes", "cell_lines", "mutation_calls"))
    assert (genes_row["entered"], genes_row["kept"]) == (706, 26) and genes_row["expected"] == "yes"
    lost_genes = next(s.lost_names for s in ledger.steps if s.unit == "genes")  # every name (the table lists the first 500)
    assert "MYC (4609; not in the mutations matrix)" in lost_genes and "10000 (no HGNC symbol)" in lost_genes and len(lost_genes) == 680
    assert (lines_row["entered"], lines_row["kept"]) == (41, 27) and lines_row["expected"] == "yes"  # kept in the dataset, NaN rows
    assert "ACH-000974 (no mutations)" in lines_row["lost_names"] and "ACH-000062 (no copy number)" in lines_row["lost_names"]
    assert "ACH-999999 (no mutations or copy number)" in lines_row["lost_names"]
    assert (calls["entered"], calls["changed"]) == (56, 38)  # 18 ones and 38 twos over the 26 genes of these lines

    write_h5ad(out, tmp_path / "lines.h5ad")  # the write path of build_dataset
    again = ad.read_h5ad(tmp_path / "lines.h5ad")
    for key in ("mutation", "copy_number"):
        pd.testing.assert_frame_equal(again.obsm[key], out.obsm[key])


@pytest.mark.parametrize(
    "header, message",
    [
        (lambda h: h.split(",", 1)[1], r"OmicsCNGene.csv: no ModelID column \(the first column, 'NF2 \(4771\)', is a gene\)"),
        (
            lambda h: ",".join(c.split(" (")[0] for c in h.split(",")),
            r"OmicsCNGene.csv: 29 of 29 gene columns are not named 'SYMBOL \(ENTREZ\)' \(first: 'NF2'\)",
        ),
    ],
)
def test_a_header_without_its_id_column_or_entrez_ids_is_refused(tmp_path, genes, header, message):
    # written here from the real excerpt: its header broken, its rows as they are
    lines = COPY_NUMBER.read_text().splitlines(keepends=True)
    broken = tmp_path / "OmicsCNGene.csv"
    broken.write_text(header(lines[0].rstrip("\n")) + "\n" + "".join(lines[1:]))
    with pytest.raises(InputError, match=message) as refused:
        parse_depmap_copy_number(broken, genes[0])
    assert "\n" not in str(refused.value)


def test_a_tgsa_header_without_entrez_ids_is_refused(tmp_path):
    broken = tmp_path / "mu.csv"
    broken.write_text("DepMap_ID,TP53 (7157),(4609)\nACH-000001,1,0\n")  # written here
    with pytest.raises(InputError, match=r"mu.csv: 1 of 2 gene columns are not an Entrez id in parentheses \(first: 'TP53 \(7157\)'\)"):
        parse_tgsa_genes(broken)
    broken.write_text("ModelID,(7157)\n")
    with pytest.raises(InputError, match="mu.csv: the first column is 'ModelID', not 'DepMap_ID'"):
        parse_tgsa_genes(broken)
