"""The accession half of the contamination check: PanglaoDB's sample list and sample names parsed into
accessions, and each evaluation dataset's accessions compared with them.

Independent reference: a real excerpt of PanglaoDB's own sample list (tests/data/real/panglaodb_samples/,
copied byte for byte from the database author's repository, provenance there), with the values asserted
below read off it by hand; and the accessions of benchmarks/accessions.tsv, each read from a public file
named in its row (Baron's from an SRA run table of GSE84133)."""

from pathlib import Path

import pytest

from benchmarks.accessions import (
    SIMULATED_STATUS,
    CorpusAccessions,
    accession_kind,
    accession_overlap,
    read_evaluation_accessions,
    to_markdown,
)
from celllm.errors import InputError
from ingest.catalog import CATALOG
from ingest.pbmc import DATASET as PBMC68K
from ingest.sources.panglaodb import read_panglaodb_sample_list, sample_accessions

REAL = Path(__file__).resolve().parent / "data" / "real" / "panglaodb_samples" / "metadata.excerpt.txt"
BARON_SRS = ["SRS1557383", "SRS1557382", "SRS1557386", "SRS1557384"]  # human1..4 (GSM2230757..60)


def test_panglaodb_sample_list_real_excerpt():
    table = read_panglaodb_sample_list(REAL)
    assert len(table) == 54 and table["species"].value_counts().to_dict() == {"Homo sapiens": 37, "Mus musculus": 14, "": 3}
    first = table[table["sample"] == "SRA553822_SRS2119548"].iloc[0]  # line 6
    assert (first["tissue"], first["protocol"], first["instrument"], first["n_genes"], first["tumor"], first["cell_line"]) == (
        "Cultured embryonic stem cells",
        "10x chromium",
        "NextSeq 500",
        "24738",
        "",
        "0",
    )
    joined = table[table["sra"] == "ERA846165"].iloc[0]  # "ERA846165_ERS1600395","notused": both accessions in one field
    assert (joined["srs"], joined["sample"], joined["tissue"]) == ("ERS1600395", "ERA846165_ERS1600395", "")
    human = table[table["species"] == "Homo sapiens"]
    assert (human["srs"] != "").sum() == 31 and set(human.loc[human["srs"] == "", "sample"]) == {
        "SRA628550",
        "SRA559821",
        "SRA275902",
        "SRA426370",
        "SRA322626",
        "SRA691149",
    }
    assert human["sra"].nunique() == 15 and (human["tissue"] == "Pancreatic islets").sum() == 12


def test_sample_names_as_the_ingest_writes_them():
    assert sample_accessions("SRA553822_SRS2119548") == ("SRA553822", "SRS2119548")
    assert sample_accessions("SRA553822_SRS2119548.sparse.RData") == ("SRA553822", "SRS2119548")
    assert sample_accessions("SRA628550") == ("SRA628550",)  # a one-sample study
    assert sample_accessions("AML-029-27-1E") == () and sample_accessions("SRA1_x") == ()
    corpus = CorpusAccessions.from_sample_names(["SRA553822_SRS2119548", "SRA628550", "SRA553822_SRS2119548", "odd"], "c")
    assert corpus.accessions == {"SRA553822", "SRS2119548", "SRA628550"}
    assert corpus.described == ("c: 3 samples, 3 SRA accessions (1 sample names without one)",)


def test_bad_sample_lists_are_named(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text('"SRA1","SRS2","t"\n')
    with pytest.raises(InputError, match=r"short.txt:1: 3 fields, expected 12"):
        read_panglaodb_sample_list(short)
    row = ',"10x chromium","Homo sapiens","x","1","2","3","0","1","0"\n'
    (tmp_path / "twice.txt").write_text('"SRA1","SRS2","t"' + row + '"SRA1","SRS2","t"' + row)
    with pytest.raises(InputError, match="sample SRA1_SRS2 is listed twice"):
        read_panglaodb_sample_list(tmp_path / "twice.txt")
    (tmp_path / "gse.txt").write_text('"GSE1","SRS2","t"' + row)
    with pytest.raises(InputError, match=r"gse.txt:1: 'GSE1' is not an SRA submission accession"):
        read_panglaodb_sample_list(tmp_path / "gse.txt")


def test_evaluation_accessions_have_kinds_sources_and_catalog_names():
    table = read_evaluation_accessions()
    assert set(table["dataset"]) <= set(CATALOG) | {PBMC68K}  # the names datasets have everywhere else
    assert all(accession_kind(a) == k for a, k in zip(table["accession"], table["kind"]))
    baron = table[table["dataset"] == "baron"]
    assert baron.loc[baron["kind"] == "sra_sample", "accession"].tolist() == BARON_SRS
    assert baron.loc[baron["kind"] == "sra_study", "accession"].tolist() == ["SRP078321"]
    assert table.loc[table["dataset"] == "zheng68k", "accession"].tolist() == ["SRP073767"]


def test_bad_accession_tables_are_named(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("dataset\tkind\taccession\tsource\nbaron\tsra_study\tSRS1557383\tx\n")
    with pytest.raises(InputError, match="a.tsv: dataset baron: SRS1557383 is a sra_sample accession, the table says sra_study"):
        read_evaluation_accessions(path)
    path.write_text("dataset\tkind\taccession\tsource\nbaron\tsra_study\tPBMC\tx\n")
    with pytest.raises(InputError, match="'PBMC' is not an SRA, GEO"):
        read_evaluation_accessions(path)


def test_a_planted_overlap_is_found_and_nothing_else():
    """The real excerpt as the corpus, with Baron's human2 sample planted in it (as a PanglaoDB sample name)."""
    listed = CorpusAccessions.from_panglaodb_list(REAL)
    planted = listed | CorpusAccessions.from_sample_names(["SRA999999_SRS1557382"], "planted")
    table = accession_overlap(["baron", "zheng68k", "sim_pbmc", "gse149383"], planted, simulated=["sim_pbmc"]).set_index("dataset")
    assert (table.loc["baron", "comparable"], table.loc["baron", "n_in_corpus"], table.loc["baron", "in_corpus"]) == (4, 1, "SRS1557382")
    assert table.loc["baron", "status"] == "in the corpus: 1 of 4 comparable accessions"
    assert table.loc["zheng68k", "status"].startswith("not comparable: only sra_study known")  # never reported as clean
    assert table.loc["sim_pbmc", "status"] == SIMULATED_STATUS and table.loc["sim_pbmc", "accessions"] == ""
    assert table["n_in_corpus"].tolist() == [1, 0, 0, 0]


def test_a_true_zero_on_panglaodbs_own_list():
    """Baron's SRS accessions are not in PanglaoDB's human samples (the excerpt holds its pancreatic islets)."""
    corpus = CorpusAccessions.from_panglaodb_list(REAL)
    assert len(corpus.accessions) == 15 + 31 and corpus.kinds == {"sra_submission", "sra_sample"}
    assert corpus.described == ("metadata.excerpt.txt: 37 of 54 listed samples (Homo sapiens)",)
    assert "ERS1600395" in CorpusAccessions.from_panglaodb_list(REAL, species=None).accessions
    table = accession_overlap(["baron", PBMC68K, "unknown_set"], corpus)
    assert table["status"].tolist() == [
        "none of 4 comparable accessions in the corpus",
        "not comparable: only sra_study known; the corpus lists sra_sample, sra_submission",
        "no accessions recorded (benchmarks/accessions.tsv)",
    ]
    nothing = accession_overlap(["baron"], CorpusAccessions.without_accessions("sim_pretrain", "simulated, no accessions"))
    assert nothing["status"].tolist() == ["not comparable: the corpus has no accessions"]
    markdown = to_markdown(table, corpus)
    assert "- corpus: metadata.excerpt.txt: 37 of 54 listed samples (Homo sapiens)" in markdown
    assert "| unknown_set | – | 0 | – | no accessions recorded (benchmarks/accessions.tsv) |" in markdown


def test_the_workflow_table_reads_the_corpus_sample_names(tmp_path):
    """As rule contamination calls it: evaluation and corpus .h5ad files named as in results/data/."""
    from benchmarks.accessions import write_accession_overlap
    from celllm.io import write_h5ad
    from tests.fixtures.data import make_counts

    corpus = make_counts(n_cells=6, n_genes=5, seed=1)
    corpus.obs["sample"] = ["SRA701877_SRS3279688"] * 3 + ["SRA999999_SRS1557384"] * 3  # a real islet sample; Baron's human4, planted
    write_h5ad(corpus, tmp_path / "panglaodb_human.h5ad")
    write_h5ad(make_counts(n_cells=4, n_genes=5, seed=2), tmp_path / "cancerscem.h5ad")
    for name in ("baron", "sim_pbmc"):
        write_h5ad(make_counts(n_cells=4, n_genes=5, seed=3), tmp_path / f"{name}.h5ad")
    table = write_accession_overlap(
        [tmp_path / "baron.h5ad", tmp_path / "sim_pbmc.h5ad"],
        [tmp_path / "panglaodb_human.h5ad", tmp_path / "cancerscem.h5ad"],
        tmp_path / "a.csv",
        tmp_path / "a.md",
    )
    assert table["in_corpus"].tolist() == ["SRS1557384", ""] and table["status"].tolist()[1] == SIMULATED_STATUS
    markdown = (tmp_path / "a.md").read_text()
    assert "- corpus: panglaodb_human: 2 samples, 4 SRA accessions" in markdown
    assert "- corpus: cancerscem: sample ids are not archive accessions; not checked" in markdown
    assert read_csv_columns(tmp_path / "a.csv") == ["dataset", "accessions", "comparable", "n_in_corpus", "in_corpus", "status"]


def read_csv_columns(path):
    return Path(path).read_text().splitlines()[0].split(",")
