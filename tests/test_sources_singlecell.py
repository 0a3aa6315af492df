"""Parsers of the real single-cell sources, each on a tiny file in the source's own format.

The files are written here in the real layouts (headers, separators,
compression, archive folders) documented in each parser's module docstring.
"""

import gzip
import io
import struct
import sys
import tarfile
import warnings

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from celllm.errors import InputError


def assert_standard(adata):
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert adata.var_names.is_unique and adata.obs_names.is_unique
    assert adata.X.nnz == 0 or adata.X.data.min() >= 0


def gz_text(path, text):
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(text)
    return path


# ---------------------------------------------------------------------------------------------- Zheng68k

ZHENG_GENES = [("ENSG00000243485", "MIR1302-10"), ("ENSG00000237613", "FAM138A"), ("ENSG00000186092", "OR4F5"),
               ("ENSG00000999999", "FAM138A")]  # a duplicated symbol, as in hg19 genes.tsv
ZHENG_BARCODES = ["AAACATACACCCAA-1", "AAACATACCCCTCA-1", "AAACATACCGGAGA-1"]
ZHENG_COUNTS = np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0], [1, 1, 0]])  # genes x cells, as matrix.mtx stores it
ZHENG_ANNOTATION = ("TSNE.1\tTSNE.2\tbarcodes\tcelltype\n"
                    "7.56554\t0.44137\tAAACATACACCCAA-1\tCD8+ Cytotoxic T\n"
                    "2.55209\t-25.0\tAAACATACCCCTCA-1\tCD8+/CD45RA+ Naive Cytotoxic\n"
                    "-1.0\t3.0\tTTTTTTTTTTTTTT-1\tCD19+ B\n")  # annotated but not in the matrix: fine


def zheng_files(counts=ZHENG_COUNTS):
    buffer = io.BytesIO()
    scipy.io.mmwrite(buffer, sp.coo_matrix(counts), field="integer")
    return {"matrix.mtx": buffer.getvalue(),
            "genes.tsv": "".join(f"{e}\t{s}\n" for e, s in ZHENG_GENES).encode(),
            "barcodes.tsv": "".join(f"{b}\n" for b in ZHENG_BARCODES).encode()}


def write_zheng_tar(path, counts=ZHENG_COUNTS):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in zheng_files(counts).items():
            info = tarfile.TarInfo(f"filtered_matrices_mex/hg19/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_zheng68k_from_archive_and_folder(tmp_path):
    from celllm.data.sources.zheng68k import parse_zheng68k

    archive = write_zheng_tar(tmp_path / "fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz")
    annotation = tmp_path / "68k_pbmc_barcodes_annotation.tsv"
    annotation.write_text(ZHENG_ANNOTATION)
    with pytest.warns(UserWarning, match="1 of 3 cells"):
        adata = parse_zheng68k(archive, annotation)
    assert_standard(adata)
    assert adata.shape == (2, 3)
    assert list(adata.obs_names) == ZHENG_BARCODES[:2]
    assert list(adata.obs["cell_type"]) == ["CD8+ Cytotoxic T", "CD8+/CD45RA+ Naive Cytotoxic"]
    assert list(adata.var_names) == ["MIR1302-10", "FAM138A", "OR4F5"]
    assert adata.var.loc["FAM138A", "ensembl_id"] == "ENSG00000237613;ENSG00000999999"
    np.testing.assert_array_equal(adata.X.toarray(), [[1, 1, 4], [0, 4, 0]])  # FAM138A = 0 + 1 and 3 + 1
    assert adata.uns["count_scale"] == "raw_counts"

    folder = tmp_path / "extracted" / "filtered_matrices_mex" / "hg19"
    folder.mkdir(parents=True)
    for name, data in zheng_files().items():
        (folder / name).write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in (folder, tmp_path / "extracted"):  # the hg19 folder or any folder above it
            again = parse_zheng68k(source, annotation)
            assert (again.X != adata.X).nnz == 0 and list(again.obs["cell_type"]) == list(adata.obs["cell_type"])


def test_zheng68k_bad_inputs(tmp_path):
    from celllm.data.sources.zheng68k import parse_zheng68k

    archive = write_zheng_tar(tmp_path / "m.tar.gz")
    no_label = tmp_path / "no_celltype.tsv"
    no_label.write_text("TSNE.1\tTSNE.2\tbarcodes\nAAACATACACCCAA-1\t1\t2\n")
    with pytest.raises(InputError, match=r"no_celltype\.tsv: missing column\(s\) celltype"):
        parse_zheng68k(archive, no_label)
    annotation = tmp_path / "a.tsv"
    annotation.write_text(ZHENG_ANNOTATION)
    with pytest.raises(InputError, match=r"nothere\.tar\.gz: not found"):
        parse_zheng68k(tmp_path / "nothere.tar.gz", annotation)
    negative = write_zheng_tar(tmp_path / "neg.tar.gz", counts=ZHENG_COUNTS * np.array([1, 1, -1]))
    with pytest.raises(InputError, match=r"neg\.tar\.gz:filtered_matrices_mex/hg19/matrix\.mtx: negative"):
        parse_zheng68k(negative, annotation)
    stranger = tmp_path / "stranger.tsv"
    stranger.write_text("TSNE.1\tTSNE.2\tbarcodes\tcelltype\n1\t2\tGGGG-1\tCD56+ NK\n")
    with pytest.raises(InputError, match=r"stranger\.tsv: none of the 3 barcodes"):
        parse_zheng68k(archive, stranger)


# ---------------------------------------------------------------------------------------------- Baron

BARON_HEADER = ",barcode,assigned_cluster,A1BG,A1CF,A2M\n"


def write_baron(path, rows, header=BARON_HEADER):
    return gz_text(path, header + "".join(",".join(map(str, r)) + "\n" for r in rows))


def test_baron_files_and_raw_tar(tmp_path):
    from celllm.data.sources.baron import parse_baron

    h1 = write_baron(tmp_path / "GSM2230757_human1_umifm_counts.csv.gz",
                     [("human1_lib1.final_cell_0001", "GATGACGGAC-GGTTTACT", "acinar", 0, 4, 0),
                      ("human1_lib1.final_cell_0002", "GAGCGCAATG-CTCAGCTT", "beta", 2, 0, 1)])
    h2 = write_baron(tmp_path / "GSM2230758_human2_umifm_counts.csv.gz",
                     [("human2_lib1.final_cell_0001", "CTTCAAGCAT-GTTCTAGA", "delta", 1, 1, 7)])
    adata = parse_baron([h1, h2])
    assert_standard(adata)
    assert adata.shape == (3, 3) and list(adata.var_names) == ["A1BG", "A1CF", "A2M"]
    assert list(adata.obs["cell_type"]) == ["acinar", "beta", "delta"]
    assert list(adata.obs["donor"]) == ["human1", "human1", "human2"]
    np.testing.assert_array_equal(adata.X.toarray(), [[0, 4, 0], [2, 0, 1], [1, 1, 7]])

    mouse = write_baron(tmp_path / "GSM2230761_mouse1_umifm_counts.csv.gz",
                        [("mouse1_lib1.final_cell_0001", "AAAA-CCCC", "beta", 1, 1, 1)])
    raw = tmp_path / "GSE84133_RAW.tar"
    with tarfile.open(raw, "w") as archive:  # GEO's RAW tar: uncompressed tar of .csv.gz files
        for path in (h1, h2, mouse):
            archive.add(path, arcname=path.name)
    from_tar = parse_baron(raw)
    assert from_tar.shape == (3, 3) and sorted(set(from_tar.obs["donor"])) == ["human1", "human2"]
    with pytest.raises(InputError, match=r"GSM2230761_mouse1_umifm_counts\.csv\.gz: a mouse sample"):
        parse_baron([h1, mouse])


def test_baron_bad_inputs(tmp_path):
    from celllm.data.sources.baron import parse_baron

    wrong = write_baron(tmp_path / "GSM2230759_human3_umifm_counts.csv.gz", [("c1", "AA", "beta", 1, 2, 3)],
                        header=",barcode,cluster,A1BG,A1CF,A2M\n")
    with pytest.raises(InputError, match=r"human3_umifm_counts\.csv\.gz: header starts"):
        parse_baron([wrong])
    hole = write_baron(tmp_path / "GSM2230760_human4_umifm_counts.csv.gz", [("c1", "AA", "beta", 1, "", 3)])
    with pytest.raises(InputError, match=r"human4_umifm_counts\.csv\.gz: empty, NaN or infinite count"):
        parse_baron([hole])
    empty = write_baron(tmp_path / "GSM1_human1_umifm_counts.csv.gz", [])
    with pytest.raises(InputError, match=r"GSM1_human1_umifm_counts\.csv\.gz: no cells"):
        parse_baron([empty])


# ---------------------------------------------------------------------------------------------- GSE117872

# R write.table layout: the header names only the cells, rows start with the gene
TPM = ('"RHH2177"\t"RHH2178"\t"RHH2179"\t"RHH2180"\n'
       '"A1BG"\t0\t12.5\t0\t3.25\n'
       '"TP53"\t100.5\t0\t40\t0\n'
       '"GAPDH"\t900\t850.25\t700\t1000\n')
CELLINFO = ("groups\tcell_color\tpatient_id\torigin\tdrug_status\tcluster\n"
            "RHH2177\tHN120P\tHN120\tHN120\tPrimary\tSensitive\n"
            "RHH2178\tHN120PCR\tHN120\tHN120\tPrimary\tResistant\n"
            "RHH2179\tHN137M\tHN137\tHN137\tMetastatic\tHoliday\n"
            "RHH2180\tHN137MCR\tHN137\tHN137\tMetastatic\tResistant\n")


def test_gse117872_tpm_and_labels(tmp_path):
    from celllm.data.sources.gse117872 import parse_gse117872

    tpm = gz_text(tmp_path / "GSE117872_good_Data_TPM.txt.gz", TPM)
    info = gz_text(tmp_path / "GSE117872_good_Data_cellinfo.txt.gz", CELLINFO)
    adata = parse_gse117872(tpm, info)
    assert_standard(adata)
    assert adata.shape == (4, 3) and list(adata.var_names) == ["A1BG", "TP53", "GAPDH"]
    assert list(adata.obs["response"]) == ["sensitive", "resistant", "sensitive", "resistant"]  # Holiday: sensitive
    assert list(adata.obs["origin"]) == ["HN120", "HN120", "HN137", "HN137"]
    np.testing.assert_allclose(adata.X.toarray()[:, 0], [0, 12.5, 0, 3.25])
    assert adata.uns["value_scale"] == "tpm"
    hn120 = parse_gse117872(tpm, info, origins=["HN120"])
    assert list(hn120.obs_names) == ["RHH2177", "RHH2178"]


def test_gse117872_bad_inputs(tmp_path):
    from celllm.data.sources.gse117872 import parse_gse117872

    tpm = tmp_path / "GSE117872_good_Data_TPM.txt"
    tpm.write_text(TPM)
    no_cluster = tmp_path / "nocluster_cellinfo.txt"
    no_cluster.write_text(CELLINFO.replace("cluster", "state"))
    with pytest.raises(InputError, match=r"nocluster_cellinfo\.txt: missing column\(s\) cluster"):
        parse_gse117872(tpm, no_cluster)
    odd = tmp_path / "odd_cellinfo.txt"
    odd.write_text(CELLINFO.replace("Holiday", "Unknown"))
    with pytest.raises(InputError, match=r"odd_cellinfo\.txt: unknown 'cluster' value 'Unknown'"):
        parse_gse117872(tpm, odd)
    info = tmp_path / "cellinfo.txt"
    info.write_text(CELLINFO)
    negative = tmp_path / "negative_TPM.txt"
    negative.write_text(TPM.replace("12.5", "-12.5"))
    with pytest.raises(InputError, match=r"negative_TPM\.txt: expression contains negative values"):
        parse_gse117872(negative, info)
    nan = tmp_path / "nan_TPM.txt"
    nan.write_text(TPM.replace("40", "NA"))
    with pytest.raises(InputError, match=r"nan_TPM\.txt: expression contains NaN"):
        parse_gse117872(nan, info)


# ---------------------------------------------------------------------------------------------- GSE149383

ERL_DATA = ('"","AAACCTGAGCGT","AAACGGGTCTGA","AAAGATGCAGTT"\n'
            '"EGFR",3,0,1\n'
            '"AXL",0,5,2\n'
            '"KRT18",7,1,0\n')
ERL_META = ("AAACCTGAGCGT,sensitive,D0,sensitive\n"
            "AAACGGGTCTGA,resistant,D2,resistant\n"
            "AAAGATGCAGTT,resistant,D2,resistant\n")


def test_gse149383_scdeal_files_and_geo_samples(tmp_path):
    from celllm.data.sources.gse149383 import parse_gse149383, parse_gse149383_samples

    data = tmp_path / "erl_total_data_2K.csv"
    data.write_text(ERL_DATA)
    meta = tmp_path / "erl_total_2K_meta.csv"
    meta.write_text(ERL_META)
    adata = parse_gse149383(data, meta)
    assert_standard(adata)
    assert adata.shape == (3, 3) and list(adata.var_names) == ["EGFR", "AXL", "KRT18"]
    assert list(adata.obs["response"]) == ["sensitive", "resistant", "resistant"]
    np.testing.assert_array_equal(adata.X.toarray(), [[3, 0, 7], [0, 5, 1], [1, 2, 0]])
    assert adata.uns["value_scale"] == "counts" and adata.uns["meta_matched_by"] == "id"

    renamed = tmp_path / "renamed_meta.csv"  # ids that do not name the columns: matched by position, as scDEAL does
    renamed.write_text(ERL_META.replace("AAA", "X"))
    with pytest.warns(UserWarning, match="matched by position"):
        assert list(parse_gse149383(data, renamed).obs["response"]) == ["sensitive", "resistant", "resistant"]

    day0 = gz_text(tmp_path / "GSM3972657_D0.txt.gz", "GENE\tAAAC\tAAAG\nEGFR\t1\t0\nAXL\t0\t2\n")
    day11 = gz_text(tmp_path / "GSM3972662_D11.txt.gz", "GENE\tTTTC\nEGFR\t4\nKRT18\t1\n")
    geo = parse_gse149383_samples({day0: 0, day11: 11})
    assert_standard(geo)
    assert geo.shape == (3, 3) and list(geo.obs["response"]) == ["sensitive", "sensitive", "resistant"]
    assert geo[geo.obs["sample"] == "GSM3972662_D11"].X.sum() == 5


def test_gse149383_bad_inputs(tmp_path):
    from celllm.data.sources.gse149383 import parse_gse149383

    data = tmp_path / "erl_total_data_2K.csv"
    data.write_text(ERL_DATA)
    unlabeled = tmp_path / "unlabeled_meta.csv"
    unlabeled.write_text(ERL_META.replace("sensitive", "D0x").replace("resistant", "D2x"))
    with pytest.raises(InputError, match=r"unlabeled_meta\.csv: no column holds sensitive/resistant labels"):
        parse_gse149383(data, unlabeled)
    with pytest.raises(InputError, match=r"missing_meta\.csv: file not found"):
        parse_gse149383(data, tmp_path / "missing_meta.csv")
    tabs = tmp_path / "tabs.csv"  # tab-separated by mistake: the comma reader sees no cells
    tabs.write_text(ERL_DATA.replace(",", "\t"))
    meta = tmp_path / "meta.csv"
    meta.write_text(ERL_META)
    with pytest.raises(InputError, match=r"tabs\.csv: no cells"):
        parse_gse149383(tabs, meta)


# ---------------------------------------------------------------------------------------------- CancerSCEM

def test_cancerscem_samples(tmp_path):
    from celllm.data.sources.cancerscem import parse_cancerscem

    a = gz_text(tmp_path / "CRC-001.counts.matrix.tsv.gz",
                "AAACCTGAGAAGGCCT-1\tAAACCTGAGACAGACC-1\nEPCAM\t5\t0\nPTPRC\t0\t3\nEPCAM\t1\t1\n")
    b = gz_text(tmp_path / "AML-029-27-1E.counts.matrix.tsv.gz",  # pandas-style header with a gene column name
                "gene\tAAACGGGTCAAACCAC-1\nPTPRC\t9\nCD34\t2\n")
    adata = parse_cancerscem([a, b])
    assert_standard(adata)
    assert adata.shape == (3, 3) and set(adata.var_names) == {"EPCAM", "PTPRC", "CD34"}
    assert set(adata.obs["tissue"]) == {"tumor"}
    assert list(adata.obs["sample"]) == ["CRC-001", "CRC-001", "AML-029-27-1E"]
    assert adata.obs_names[0] == "CRC-001:AAACCTGAGAAGGCCT-1"
    dense = adata.to_df()
    assert dense.loc["CRC-001:AAACCTGAGAAGGCCT-1", "EPCAM"] == 6  # duplicate symbol rows summed
    assert dense.loc["AML-029-27-1E:AAACGGGTCAAACCAC-1"].to_dict() == {**{g: 0 for g in dense.columns},
                                                                      "PTPRC": 9, "CD34": 2}
    assert adata.uns["count_scale"] == "raw_counts"


def test_cancerscem_bad_inputs(tmp_path):
    from celllm.data.sources.cancerscem import parse_cancerscem

    text = gz_text(tmp_path / "CRC-002.counts.matrix.tsv.gz", "C1\tC2\nEPCAM\t5\tlots\n")
    with pytest.raises(InputError, match=r"CRC-002\.counts\.matrix\.tsv\.gz: non-numeric expression value 'lots'"):
        parse_cancerscem([text])
    ragged = gz_text(tmp_path / "CRC-003.counts.matrix.tsv.gz", "C1\tC2\tC3\nEPCAM\t5\t1\t0\t2\n")
    with pytest.raises(InputError, match=r"CRC-003\.counts\.matrix\.tsv\.gz: the header has 3 fields but the first gene row has 5"):
        parse_cancerscem([ragged])
    named = gz_text(tmp_path / "sample.tsv.gz", "C1\nEPCAM\t5\n")
    with pytest.raises(InputError, match=r"sample\.tsv\.gz: expected a CancerSCEM sample file"):
        parse_cancerscem([named])


# ---------------------------------------------------------------------------------------------- PanglaoDB

def rdata_dgcmatrix(genes_x_cells, genes, cells, name="sm"):
    """A gzip-compressed .RData (R's XDR serialization, format 2) holding one Matrix::dgCMatrix.

    A tiny writer for tests: Python's `rdata` package reads .RData but cannot
    write S4 objects. The layout is the one R's save() produces.
    """
    out = bytearray(b"RDX2\nX\n")

    def i32(value):
        out.extend(struct.pack(">i", value))

    def flags(kind, is_object=False, attributes=False, tag=False, levels=0):
        return kind | (is_object << 8) | (attributes << 9) | (tag << 10) | (levels << 12)

    def char(text):
        data = text.encode()
        i32(flags(9, levels=64))  # CHARSXP, ASCII
        i32(len(data))
        out.extend(data)

    def strings(values, attributes=None):
        i32(flags(16, attributes=attributes is not None))
        i32(len(values))
        for value in values:
            char(value)
        if attributes:
            pairlist(attributes)

    def ints(values):
        i32(13)
        i32(len(values))
        out.extend(np.asarray(values, dtype=">i4").tobytes())

    def reals(values):
        i32(14)
        i32(len(values))
        out.extend(np.asarray(values, dtype=">f8").tobytes())

    def vector(writers):
        i32(19)
        i32(len(writers))
        for write in writers:
            write()

    def pairlist(items):
        for tag, write in items:
            i32(flags(2, tag=True))
            i32(1)  # SYMSXP
            char(tag)
            write()
        i32(254)  # NILVALUE

    m = sp.csc_matrix(genes_x_cells)
    m.sort_indices()
    slots = [("i", lambda: ints(m.indices)), ("p", lambda: ints(m.indptr)), ("Dim", lambda: ints(m.shape)),
             ("Dimnames", lambda: vector([lambda: strings(genes), lambda: strings(cells)])),
             ("x", lambda: reals(m.data)), ("factors", lambda: vector([])),
             ("class", lambda: strings(["dgCMatrix"], [("package", lambda: strings(["Matrix"]))]))]
    i32(2)
    i32(0x040201)  # written by R 4.2.1
    i32(0x020300)  # readable by R >= 2.3.0
    i32(flags(2, tag=True))
    i32(1)
    char(name)
    i32(flags(25, is_object=True, attributes=True, levels=16))  # S4SXP: only slots (attributes)
    pairlist(slots)
    i32(254)
    return gzip.compress(bytes(out))


PANGLAO_GENES = ["A1BG_ENSG00000121410.11", "RP11-34P13.7_ENSG00000238009.6",
                 "Y_RNA_ENSG00000201317.1", "Y_RNA_ENSG00000199916.1"]  # symbols may contain '_' and repeat


def test_panglaodb_rdata(tmp_path):
    pytest.importorskip("rdata", reason="reading .RData needs the optional package 'rdata' (pip install rdata)")
    from celllm.data.sources.panglaodb import parse_panglaodb

    counts = np.array([[1, 0, 2], [0, 5, 0], [3, 0, 0], [1, 1, 0]])  # genes x cells
    first = tmp_path / "SRA553822_SRS2119548.sparse.RData"
    first.write_bytes(rdata_dgcmatrix(counts, PANGLAO_GENES, ["AAACCTGAGAAACCAT_1", "AAACCTGAGAAACCGC_1",
                                                              "AAACCTGAGAAACGCC_1"]))
    second = tmp_path / "SRA640325_SRS2769051.sparse.RData"
    second.write_bytes(rdata_dgcmatrix(np.array([[4], [2]]), ["CD3E_ENSG00000198851.9", "A1BG_ENSG00000121410.11"],
                                       ["TTTGTCATCTTTAGTC_1"]))
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
    from celllm.data.sources.panglaodb import parse_panglaodb

    with pytest.raises(InputError, match=r"SRA1_SRS1\.sparse\.RData: file not found"):
        parse_panglaodb([tmp_path / "SRA1_SRS1.sparse.RData"])
    sample = tmp_path / "SRA553822_SRS2119548.sparse.RData"
    sample.write_bytes(rdata_dgcmatrix(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"]))
    monkeypatch.setitem(sys.modules, "rdata", None)  # the optional reader absent: a one-line error, not a traceback
    with pytest.raises(InputError, match=r"SRA553822_SRS2119548\.sparse\.RData: .*needs the Python package 'rdata'"):
        parse_panglaodb([sample])


def test_panglaodb_bad_inputs(tmp_path):
    pytest.importorskip("rdata", reason="reading .RData needs the optional package 'rdata' (pip install rdata)")
    from celllm.data.sources.panglaodb import parse_panglaodb

    mouse = tmp_path / "SRA653146_SRS3044259.sparse.RData"
    mouse.write_bytes(rdata_dgcmatrix(np.array([[1]]), ["0610009O20Rik_ENSMUSG00000024442.5"], ["AAAC_1"]))
    with pytest.raises(InputError, match=r"SRA653146_SRS3044259\.sparse\.RData: not a human sample"):
        parse_panglaodb([mouse])
    other = tmp_path / "SRA2_SRS2.sparse.RData"
    other.write_bytes(rdata_dgcmatrix(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"], name="counts"))
    with pytest.raises(InputError, match=r"SRA2_SRS2\.sparse\.RData: no object 'sm' \(has: counts"):
        parse_panglaodb([other])
    truncated = tmp_path / "SRA3_SRS3.sparse.RData"
    truncated.write_bytes(rdata_dgcmatrix(np.array([[1]]), ["A1BG_ENSG00000121410.11"], ["AAAC_1"])[:40])
    with pytest.raises(InputError, match=r"SRA3_SRS3\.sparse\.RData: not a readable R data file"):
        parse_panglaodb([truncated])
