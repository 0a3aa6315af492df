"""Parsers of the real single-cell sources, each on a tiny file in the source's own format.

The files are written here in the real layouts (headers, separators,
compression, archive folders) documented in each parser's module docstring.
"""

import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from celllm.errors import InputError
from ingest.ledger import Ledger
from tests.fixtures.formats import (
    TENX_FOLDER,
    panglaodb_rdata,
    tenx_files,
    write_10x_tar,
    write_baron_sample,
    write_cancerscem_sample,
    write_geo_raw_tar,
    write_gse117872_cellinfo,
    write_gse117872_tpm,
    write_gse149383_sample,
    write_scdeal_expression,
    write_scdeal_meta,
    write_text,
    write_zheng68k_annotation,
)


def assert_standard(adata):
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert adata.var_names.is_unique and adata.obs_names.is_unique
    assert adata.X.nnz == 0 or adata.X.data.min() >= 0


# ---------------------------------------------------------------------------------------------- Zheng68k

ZHENG_GENES = [
    ("ENSG00000243485", "MIR1302-10"),
    ("ENSG00000237613", "FAM138A"),
    ("ENSG00000186092", "OR4F5"),
    ("ENSG00000999999", "FAM138A"),
]  # a duplicated symbol, as in hg19 genes.tsv
ZHENG_BARCODES = ["AAACATACACCCAA-1", "AAACATACCCCTCA-1", "AAACATACCGGAGA-1"]
ZHENG_COUNTS = np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0], [1, 1, 0]])  # genes x cells, as matrix.mtx stores it
# the third matrix cell is not annotated (dropped with a warning); an annotated cell outside the matrix is fine
ZHENG_ANNOTATED = {
    "AAACATACACCCAA-1": "CD8+ Cytotoxic T",
    "AAACATACCCCTCA-1": "CD8+/CD45RA+ Naive Cytotoxic",
    "TTTTTTTTTTTTTT-1": "CD19+ B",
}


def write_zheng_tar(path, counts=ZHENG_COUNTS):
    return write_10x_tar(path, counts, ZHENG_GENES, ZHENG_BARCODES)


def write_zheng_annotation(path, annotated=ZHENG_ANNOTATED):
    return write_zheng68k_annotation(path, list(annotated), list(annotated.values()))


def test_zheng68k_from_archive_and_folder(tmp_path):
    from ingest.sources.zheng68k import parse_zheng68k

    archive = write_zheng_tar(tmp_path / "fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz")
    annotation = write_zheng_annotation(tmp_path / "68k_pbmc_barcodes_annotation.tsv")
    ledger = Ledger("zheng68k")
    adata = parse_zheng68k(archive, annotation, ledger)
    labels = ledger.frame().iloc[0]
    assert (labels["step"], labels["entered"], labels["kept"], labels["lost_names"]) == ("labels", 3, 2, "AAACATACCGGAGA-1")
    assert_standard(adata)
    assert adata.shape == (2, 3)
    assert list(adata.obs_names) == ZHENG_BARCODES[:2]
    assert list(adata.obs["cell_type"]) == ["CD8+ Cytotoxic T", "CD8+/CD45RA+ Naive Cytotoxic"]
    assert list(adata.var_names) == ["MIR1302-10", "FAM138A", "OR4F5"]
    assert adata.var.loc["FAM138A", "ensembl_id"] == "ENSG00000237613;ENSG00000999999"
    np.testing.assert_array_equal(adata.X.toarray(), [[1, 1, 4], [0, 4, 0]])  # FAM138A = 0 + 1 and 3 + 1
    assert adata.uns["count_scale"] == "raw_counts"

    folder = tmp_path / "extracted" / TENX_FOLDER
    folder.mkdir(parents=True)
    for name, data in tenx_files(ZHENG_COUNTS, ZHENG_GENES, ZHENG_BARCODES).items():
        (folder / name).write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in (folder, tmp_path / "extracted"):  # the hg19 folder or any folder above it
            again = parse_zheng68k(source, annotation)
            assert (again.X != adata.X).nnz == 0 and list(again.obs["cell_type"]) == list(adata.obs["cell_type"])


def test_zheng68k_bad_inputs(tmp_path):
    from ingest.sources.zheng68k import parse_zheng68k

    archive = write_zheng_tar(tmp_path / "m.tar.gz")
    no_label = tmp_path / "no_celltype.tsv"
    no_label.write_text("TSNE.1\tTSNE.2\tbarcodes\nAAACATACACCCAA-1\t1\t2\n")
    with pytest.raises(InputError, match=r"no_celltype\.tsv: missing column\(s\) 'celltype'"):
        parse_zheng68k(archive, no_label)
    annotation = write_zheng_annotation(tmp_path / "a.tsv")
    with pytest.raises(InputError, match=r"nothere\.tar\.gz: not found"):
        parse_zheng68k(tmp_path / "nothere.tar.gz", annotation)
    negative = write_zheng_tar(tmp_path / "neg.tar.gz", counts=ZHENG_COUNTS * np.array([1, 1, -1]))
    with pytest.raises(InputError, match=r"neg\.tar\.gz:filtered_matrices_mex/hg19/matrix\.mtx: negative"):
        parse_zheng68k(negative, annotation)
    stranger = write_zheng_annotation(tmp_path / "stranger.tsv", {"GGGG-1": "CD56+ NK"})
    with pytest.raises(InputError, match=r"stranger\.tsv: none of the 3 barcodes"):
        parse_zheng68k(archive, stranger)


# ---------------------------------------------------------------------------------------------- Baron

BARON_GENES = ["A1BG", "A1CF", "A2M"]


def write_baron(path, rows, columns=None):
    """rows: (cell, barcode, cluster, *counts)."""
    cells, barcodes, clusters, *counts = zip(*rows) if rows else ((), (), ())
    extra = {} if columns is None else {"columns": columns}
    return write_baron_sample(path, cells, barcodes, clusters, BARON_GENES, list(zip(*counts)), **extra)


def test_baron_files_and_raw_tar(tmp_path):
    from ingest.sources.baron import parse_baron

    h1 = write_baron(
        tmp_path / "GSM2230757_human1_umifm_counts.csv.gz",
        [
            ("human1_lib1.final_cell_0001", "GATGACGGAC-GGTTTACT", "acinar", 0, 4, 0),
            ("human1_lib1.final_cell_0002", "GAGCGCAATG-CTCAGCTT", "beta", 2, 0, 1),
        ],
    )
    h2 = write_baron(
        tmp_path / "GSM2230758_human2_umifm_counts.csv.gz", [("human2_lib1.final_cell_0001", "CTTCAAGCAT-GTTCTAGA", "delta", 1, 1, 7)]
    )
    adata = parse_baron([h1, h2])
    assert_standard(adata)
    assert adata.shape == (3, 3) and list(adata.var_names) == ["A1BG", "A1CF", "A2M"]
    assert list(adata.obs["cell_type"]) == ["acinar", "beta", "delta"]
    assert list(adata.obs["donor"]) == ["human1", "human1", "human2"]
    np.testing.assert_array_equal(adata.X.toarray(), [[0, 4, 0], [2, 0, 1], [1, 1, 7]])

    mouse = write_baron(tmp_path / "GSM2230761_mouse1_umifm_counts.csv.gz", [("mouse1_lib1.final_cell_0001", "AAAA-CCCC", "beta", 1, 1, 1)])
    raw = write_geo_raw_tar(tmp_path / "GSE84133_RAW.tar", [h1, h2, mouse])
    from_tar = parse_baron(raw)
    assert from_tar.shape == (3, 3) and sorted(set(from_tar.obs["donor"])) == ["human1", "human2"]
    with pytest.raises(InputError, match=r"GSM2230761_mouse1_umifm_counts\.csv\.gz: a mouse sample"):
        parse_baron([h1, mouse])


def test_baron_bad_inputs(tmp_path):
    from ingest.sources.baron import parse_baron

    wrong = write_baron(
        tmp_path / "GSM2230759_human3_umifm_counts.csv.gz", [("c1", "AA", "beta", 1, 2, 3)], columns=("", "barcode", "cluster")
    )
    with pytest.raises(InputError, match=r"human3_umifm_counts\.csv\.gz: header starts"):
        parse_baron([wrong])
    hole = write_baron(tmp_path / "GSM2230760_human4_umifm_counts.csv.gz", [("c1", "AA", "beta", 1, "", 3)])
    with pytest.raises(InputError, match=r"human4_umifm_counts\.csv\.gz: empty, NaN or infinite count"):
        parse_baron([hole])
    empty = write_baron(tmp_path / "GSM1_human1_umifm_counts.csv.gz", [])
    with pytest.raises(InputError, match=r"GSM1_human1_umifm_counts\.csv\.gz: no cells"):
        parse_baron([empty])


# ---------------------------------------------------------------------------------------------- GSE117872

TPM_CELLS = ["RHH2177", "RHH2178", "RHH2179", "RHH2180"]
TPM_GENES = ["A1BG", "TP53", "GAPDH"]
TPM_VALUES = [[0, 12.5, 0, 3.25], [100.5, 0, 40, 0], [900, 850.25, 700, 1000]]  # genes x cells
CELLINFO = [
    ("RHH2177", "HN120P", "HN120", "HN120", "Primary", "Sensitive"),
    ("RHH2178", "HN120PCR", "HN120", "HN120", "Primary", "Resistant"),
    ("RHH2179", "HN137M", "HN137", "HN137", "Metastatic", "Holiday"),
    ("RHH2180", "HN137MCR", "HN137", "HN137", "Metastatic", "Resistant"),
]


def write_tpm(path, values=TPM_VALUES):
    return write_gse117872_tpm(path, TPM_GENES, TPM_CELLS, values)


def test_gse117872_tpm_and_labels(tmp_path):
    from ingest.sources.gse117872 import parse_gse117872

    tpm = write_tpm(tmp_path / "GSE117872_good_Data_TPM.txt.gz")
    info = write_gse117872_cellinfo(tmp_path / "GSE117872_good_Data_cellinfo.txt.gz", CELLINFO)
    adata = parse_gse117872(tpm, info)
    assert_standard(adata)
    assert adata.shape == (4, 3) and list(adata.var_names) == ["A1BG", "TP53", "GAPDH"]
    assert list(adata.obs["response"]) == ["sensitive", "resistant", "sensitive", "resistant"]  # Holiday: sensitive
    assert list(adata.obs["origin"]) == ["HN120", "HN120", "HN137", "HN137"]
    np.testing.assert_allclose(adata.X.toarray()[:, 0], [0, 12.5, 0, 3.25])
    assert adata.uns["value_scale"] == "tpm"
    assert "Unnamed: 8" not in adata.obs.columns and "pagoda_clusters" in adata.obs.columns  # the real file's empty last column dropped
    ledger = Ledger("gse117872_hn120")
    hn120 = parse_gse117872(tpm, info, origins=["HN120"], ledger=ledger)
    assert list(hn120.obs_names) == ["RHH2177", "RHH2178"]
    selection = ledger.frame().set_index("step").loc["selection"]
    assert (selection["entered"], selection["kept"], selection["expected"]) == (4, 2, "yes") and "HN120: 2, HN137: 2" in selection["detail"]


def test_gse117872_bad_inputs(tmp_path):
    from ingest.sources.gse117872 import parse_gse117872

    tpm = write_tpm(tmp_path / "GSE117872_good_Data_TPM.txt")
    no_cluster = write_gse117872_cellinfo(tmp_path / "nocluster_cellinfo.txt", CELLINFO)
    no_cluster.write_text(no_cluster.read_text().replace("cluster", "state"))
    with pytest.raises(InputError, match=r"nocluster_cellinfo\.txt: missing column\(s\) 'cluster'"):
        parse_gse117872(tpm, no_cluster)
    odd = write_gse117872_cellinfo(tmp_path / "odd_cellinfo.txt", [(*r[:5], "Unknown" if r[5] == "Holiday" else r[5]) for r in CELLINFO])
    with pytest.raises(InputError, match=r"odd_cellinfo\.txt: unknown 'cluster' value 'Unknown'"):
        parse_gse117872(tpm, odd)
    info = write_gse117872_cellinfo(tmp_path / "cellinfo.txt", CELLINFO)
    negative = write_tpm(tmp_path / "negative_TPM.txt", [[0, -12.5, 0, 3.25], *TPM_VALUES[1:]])
    with pytest.raises(InputError, match=r"negative_TPM\.txt: expression contains negative values"):
        parse_gse117872(negative, info)
    nan = write_tpm(tmp_path / "nan_TPM.txt", [TPM_VALUES[0], [100.5, 0, "NA", 0], TPM_VALUES[2]])
    with pytest.raises(InputError, match=r"nan_TPM\.txt: expression contains NaN"):
        parse_gse117872(nan, info)


# ---------------------------------------------------------------------------------------------- GSE149383

ERL_GENES = ["EGFR", "AXL", "KRT18"]
ERL_CELLS = ["AAACCTGAGCGT", "AAACGGGTCTGA", "AAAGATGCAGTT"]
ERL_COUNTS = [[3, 0, 1], [0, 5, 2], [7, 1, 0]]  # genes x cells
ERL_LABELS = ["sensitive", "resistant", "resistant"]
ERL_DAYS = ["D0", "D2", "D2"]


def test_gse149383_scdeal_files_and_geo_samples(tmp_path):
    from ingest.sources.gse149383 import parse_gse149383, parse_gse149383_samples

    data = write_scdeal_expression(tmp_path / "erl_total_data_2K.csv", ERL_GENES, ERL_CELLS, ERL_COUNTS)
    meta = write_scdeal_meta(tmp_path / "erl_total_2K_meta.csv", ERL_CELLS, ERL_LABELS, ERL_DAYS)
    adata = parse_gse149383(data, meta)
    assert_standard(adata)
    assert adata.shape == (3, 3) and list(adata.var_names) == ["EGFR", "AXL", "KRT18"]
    assert list(adata.obs["response"]) == ["sensitive", "resistant", "resistant"]
    np.testing.assert_array_equal(adata.X.toarray(), [[3, 0, 7], [0, 5, 1], [1, 2, 0]])
    assert adata.uns["value_scale"] == "counts" and adata.uns["meta_matched_by"] == "id"

    # ids that do not name the columns: matched by position, as scDEAL does
    renamed = write_scdeal_meta(tmp_path / "renamed_meta.csv", [c.replace("AAA", "X") for c in ERL_CELLS], ERL_LABELS, ERL_DAYS)
    with pytest.warns(UserWarning, match="matched by position"):
        assert list(parse_gse149383(data, renamed).obs["response"]) == ["sensitive", "resistant", "resistant"]

    day0 = write_gse149383_sample(tmp_path / "GSM3972657_D0.txt.gz", ["EGFR", "AXL"], ["AAAC", "AAAG"], [[1, 0], [0, 2]])
    day11 = write_gse149383_sample(tmp_path / "GSM3972662_D11.txt.gz", ["EGFR", "KRT18"], ["TTTC"], [[4], [1]])
    geo = parse_gse149383_samples({day0: 0, day11: 11})
    assert_standard(geo)
    assert geo.shape == (3, 3) and list(geo.obs["response"]) == ["sensitive", "sensitive", "resistant"]
    assert geo[geo.obs["sample"] == "GSM3972662_D11"].X.sum() == 5


def test_gse149383_bad_inputs(tmp_path):
    from ingest.sources.gse149383 import parse_gse149383

    data = write_scdeal_expression(tmp_path / "erl_total_data_2K.csv", ERL_GENES, ERL_CELLS, ERL_COUNTS)
    unlabeled = write_scdeal_meta(tmp_path / "unlabeled_meta.csv", ERL_CELLS, ["D0x", "D2x", "D2x"], ERL_DAYS)
    with pytest.raises(InputError, match=r"unlabeled_meta\.csv: no column holds sensitive/resistant labels"):
        parse_gse149383(data, unlabeled)
    with pytest.raises(InputError, match=r"missing_meta\.csv: file not found"):
        parse_gse149383(data, tmp_path / "missing_meta.csv")
    tabs = write_text(
        tmp_path / "tabs.csv", data.read_text().replace(",", "\t")
    )  # tab-separated by mistake: the comma reader sees no cells
    meta = write_scdeal_meta(tmp_path / "meta.csv", ERL_CELLS, ERL_LABELS, ERL_DAYS)
    with pytest.raises(InputError, match=r"tabs\.csv: no cells"):
        parse_gse149383(tabs, meta)


# ---------------------------------------------------------------------------------------------- CancerSCEM


def test_cancerscem_samples(tmp_path):
    from ingest.sources.cancerscem import parse_cancerscem

    a = write_cancerscem_sample(
        tmp_path / "CRC-001.counts.matrix.tsv.gz",
        ["EPCAM", "PTPRC", "EPCAM"],
        ["AAACCTGAGAAGGCCT-1", "AAACCTGAGACAGACC-1"],
        [[5, 0], [0, 3], [1, 1]],
    )
    b = write_cancerscem_sample(
        tmp_path / "AML-029-27-1E.counts.matrix.tsv.gz", ["PTPRC", "CD34"], ["AAACGGGTCAAACCAC-1"], [[9], [2]], gene_column="gene"
    )  # pandas-style header with a gene column name
    adata = parse_cancerscem([a, b])
    assert_standard(adata)
    assert adata.shape == (3, 3) and set(adata.var_names) == {"EPCAM", "PTPRC", "CD34"}
    assert set(adata.obs["tissue"]) == {"tumor"}
    assert list(adata.obs["sample"]) == ["CRC-001", "CRC-001", "AML-029-27-1E"]
    assert adata.obs_names[0] == "CRC-001:AAACCTGAGAAGGCCT-1"
    dense = adata.to_df()
    assert dense.loc["CRC-001:AAACCTGAGAAGGCCT-1", "EPCAM"] == 6  # duplicate symbol rows summed
    assert dense.loc["AML-029-27-1E:AAACGGGTCAAACCAC-1"].to_dict() == {**{g: 0 for g in dense.columns}, "PTPRC": 9, "CD34": 2}
    assert adata.uns["count_scale"] == "raw_counts"


def test_cancerscem_bad_inputs(tmp_path):
    from ingest.sources.cancerscem import parse_cancerscem

    text = write_cancerscem_sample(tmp_path / "CRC-002.counts.matrix.tsv.gz", ["EPCAM"], ["C1", "C2"], [[5, "lots"]])
    with pytest.raises(InputError, match=r"CRC-002\.counts\.matrix\.tsv\.gz: non-numeric expression value 'lots'"):
        parse_cancerscem([text])
    ragged = write_cancerscem_sample(tmp_path / "CRC-003.counts.matrix.tsv.gz", ["EPCAM"], ["C1", "C2", "C3"], [[5, 1, 0, 2]])
    with pytest.raises(InputError, match=r"CRC-003\.counts\.matrix\.tsv\.gz: the header has 3 fields but the first gene row has 5"):
        parse_cancerscem([ragged])
    named = write_cancerscem_sample(tmp_path / "sample.tsv.gz", ["EPCAM"], ["C1"], [[5]])
    with pytest.raises(InputError, match=r"sample\.tsv\.gz: expected a CancerSCEM sample file"):
        parse_cancerscem([named])


# ---------------------------------------------------------------------------------------------- PanglaoDB

PANGLAO_GENES = [
    "A1BG_ENSG00000121410.11",
    "RP11-34P13.7_ENSG00000238009.6",
    "Y_RNA_ENSG00000201317.1",
    "Y_RNA_ENSG00000199916.1",
]  # symbols may contain '_' and repeat


def test_panglaodb_rdata(tmp_path):
    pytest.importorskip("rdata", reason="reading .RData needs the optional package 'rdata' (pip install rdata)")
    from ingest.sources.panglaodb import parse_panglaodb

    counts = np.array([[1, 0, 2], [0, 5, 0], [3, 0, 0], [1, 1, 0]])  # genes x cells
    first = tmp_path / "SRA553822_SRS2119548.sparse.RData"
    first.write_bytes(panglaodb_rdata(counts, PANGLAO_GENES, ["AAACCTGAGAAACCAT_1", "AAACCTGAGAAACCGC_1", "AAACCTGAGAAACGCC_1"]))
    second = tmp_path / "SRA640325_SRS2769051.sparse.RData"
    second.write_bytes(panglaodb_rdata(np.array([[4], [2]]), ["CD3E_ENSG00000198851.9", "A1BG_ENSG00000121410.11"], ["TTTGTCATCTTTAGTC_1"]))
    adata = parse_panglaodb([first, second])
    assert_standard(adata)
    assert adata.shape == (4, 4)
    assert set(adata.var_names) == {"A1BG", "RP11-34P13.7", "Y_RNA", "CD3E"}
    assert set(adata.obs["tissue"]) == {"normal"}
    assert list(adata.obs["sample"]) == ["SRA553822_SRS2119548"] * 3 + ["SRA640325_SRS2769051"]
    dense = adata.to_df()
    assert dense.loc["SRA553822_SRS2119548:AAACCTGAGAAACCAT_1", "Y_RNA"] == 4  # 3 + 1, same symbol summed
    assert dense.loc["SRA640325_SRS2769051:TTTGTCATCTTTAGTC_1", ["CD3E", "A1BG", "Y_RNA"]].tolist() == [4, 2, 0]
    assert adata.var.loc["A1BG", "ensembl_id"] == "ENSG00000121410.11"


def test_panglaodb_missing_file_and_missing_reader(tmp_path, monkeypatch):
    from ingest.sources.panglaodb import parse_panglaodb

    with pytest.raises(InputError, match=r"SRA1_SRS1\.sparse\.RData: file not found"):
        parse_panglaodb([tmp_path / "SRA1_SRS1.sparse.RData"])
    sample = tmp_path / "SRA553822_SRS2119548.sparse.RData"
    sample.write_bytes(panglaodb_rdata(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"]))
    monkeypatch.setitem(sys.modules, "rdata", None)  # the optional reader absent: a one-line error, not a traceback
    with pytest.raises(InputError, match=r"SRA553822_SRS2119548\.sparse\.RData: .*needs the Python package 'rdata'"):
        parse_panglaodb([sample])


def test_panglaodb_bad_inputs(tmp_path):
    pytest.importorskip("rdata", reason="reading .RData needs the optional package 'rdata' (pip install rdata)")
    from ingest.sources.panglaodb import parse_panglaodb

    mouse = tmp_path / "SRA653146_SRS3044259.sparse.RData"
    mouse.write_bytes(panglaodb_rdata(np.array([[1]]), ["0610009O20Rik_ENSMUSG00000024442.5"], ["AAAC_1"]))
    with pytest.raises(InputError, match=r"SRA653146_SRS3044259\.sparse\.RData: not a human sample"):
        parse_panglaodb([mouse])
    other = tmp_path / "SRA2_SRS2.sparse.RData"
    other.write_bytes(panglaodb_rdata(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"], name="counts"))
    with pytest.raises(InputError, match=r"SRA2_SRS2\.sparse\.RData: no object 'sm' \(has: counts"):
        parse_panglaodb([other])
    truncated = tmp_path / "SRA3_SRS3.sparse.RData"
    truncated.write_bytes(panglaodb_rdata(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"])[:40])
    with pytest.raises(InputError, match=r"SRA3_SRS3\.sparse\.RData: not a readable R data file"):
        parse_panglaodb([truncated])


def test_zheng68k_lists_saved_with_a_byte_order_mark(tmp_path, caplog):
    """genes.tsv and barcodes.tsv re-saved by a Windows editor: the mark is not part of the first gene or barcode."""
    from ingest.sources.zheng68k import parse_zheng68k

    folder = tmp_path / TENX_FOLDER
    folder.mkdir(parents=True)
    for name, data in tenx_files(ZHENG_COUNTS, ZHENG_GENES, ZHENG_BARCODES).items():
        (folder / name).write_bytes(b"\xef\xbb\xbf" + data if name.endswith(".tsv") else data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = parse_zheng68k(folder, write_zheng_annotation(tmp_path / "annotation.tsv"))
    assert list(adata.var_names) == ["MIR1302-10", "FAM138A", "OR4F5"] and adata.obs_names[0] == ZHENG_BARCODES[0]
    assert caplog.text.count("stripped a byte-order mark") == 2
