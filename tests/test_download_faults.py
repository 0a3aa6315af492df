"""Faults of downloads and archives (issue 21, item 6), each reproduced against the local server or a file
made here: a resume from a server without a validator, two downloads of one file at once, a lock file that
does not parse, and archives that expand past the cap."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import pytest

import ingest.sources._common as common
from celllm.errors import InputError
from ingest.download import fetch, fetch_each, pin
from tests.test_download import DATA, FAST, FileServer, sha

NEW = bytes(reversed(DATA))  # the same size: only the content tells the versions apart


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with its hash."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- resume only with a validator


@pytest.mark.parametrize("across_runs", [False, True], ids=["within-a-run", "across-runs"])
def test_resume_without_validator_starts_again_from_zero(server, tmp_path, across_runs):
    """No ETag, no Last-Modified, the file replaced between two requests: the old first bytes must not be
    spliced onto the new rest (and pinned); the second request asks for all of it."""
    lock, dest = tmp_path / "lock.tsv", tmp_path / "v.bin"
    if across_runs:
        url = server.add("/v.bin", DATA, cut_after=100_000, cut_times=99)
        with pytest.raises(InputError, match="gave up after 1 attempt"):
            fetch(url, dest, lock=lock, key="v", retries=1, **FAST)
        assert dest.with_name("v.bin.part").stat().st_size == 100_000
        server.add("/v.bin", NEW)  # a new release meanwhile
    else:
        url = server.add("/v.bin", DATA, cut_after=100_000, then=NEW)
    fetch(url, dest, lock=lock, key="v", retries=2, **FAST)
    assert dest.read_bytes() == NEW  # not DATA[:100_000] + NEW[100_000:]
    assert lock.read_text() == f"key\tsha256\turl\nv\t{sha(NEW)}\t{url}\n"
    first, second = server.hits("/v.bin")
    assert "range" not in first and "range" not in second and "if-range" not in second
    assert set(snapshot(tmp_path)) == {"lock.tsv", "v.bin", ".lock.tsv.flock"}  # no part, origin or download lock left


@pytest.mark.parametrize(
    ("headers", "resumed", "if_range"),
    [
        ({"etag": '"v1"'}, True, '"v1"'),
        ({"last_modified": "Wed, 01 Jan 2025 00:00:00 GMT"}, True, "Wed, 01 Jan 2025 00:00:00 GMT"),
        ({"etag": 'W/"weak"'}, False, None),  # a weak ETag never matches an If-Range: no validator
        ({}, False, None),
    ],
    ids=["etag", "last-modified", "weak-etag", "none"],
)
def test_a_resume_needs_a_validator_sent_as_if_range(server, tmp_path, headers, resumed, if_range):
    url = server.add("/r.bin", cut_after=100_000, **headers)
    dest = fetch(url, tmp_path / "r.bin", sha256=sha(DATA), retries=2, **FAST)
    assert dest.read_bytes() == DATA
    second = server.hits("/r.bin")[1]
    assert (second.get("range") == "bytes=100000-") is resumed and second.get("if-range") == if_range


def test_a_server_that_ignores_if_range_cannot_splice_either(server, tmp_path):
    lock, dest = tmp_path / "lock.tsv", tmp_path / "x.bin"
    url = server.add("/x.bin", DATA, etag='"v1"', cut_after=100_000, cut_times=99)
    with pytest.raises(InputError, match="gave up"):
        fetch(url, dest, lock=lock, key="x", retries=1, **FAST)
    server.add("/x.bin", NEW, etag='"v2"', ignore_if_range=True)  # answers 206 from the new file anyway
    fetch(url, dest, lock=lock, key="x", retries=2, **FAST)
    assert dest.read_bytes() == NEW and sha(NEW) in lock.read_text()
    _, resumed, again = server.hits("/x.bin")
    assert resumed["if-range"] == '"v1"' and "range" not in again


# ---------------------------------------------------------------- one download of a file at a time


def _twice_at_once(call) -> tuple[list, list]:
    """Run `call` in two threads released together; (their results, their exceptions)."""
    start, results, errors = threading.Barrier(2), [], []

    def run():
        start.wait()
        try:
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results, errors


@pytest.mark.parametrize("pinned_by", ["lock", "sha256", "nothing"])
def test_two_downloads_of_one_file_take_turns_and_the_second_verifies_the_first(server, tmp_path, capsys, pinned_by):
    url = server.add("/both.bin", delay=0.4)  # slow enough that the two overlap
    lock, dest = tmp_path / "lock.tsv", tmp_path / "both.bin"
    options = {"lock": {"lock": lock, "key": "both"}, "sha256": {"sha256": sha(DATA)}, "nothing": {}}[pinned_by]
    results, errors = _twice_at_once(lambda: fetch(url, dest, **options, **FAST))
    assert errors == [] and results == [dest, dest]
    assert dest.read_bytes() == DATA and len(server.hits("/both.bin")) == 1  # the second did not download again
    assert f"waiting for another download of {dest} to finish" in capsys.readouterr().err
    left = set(snapshot(tmp_path))
    assert left == ({"both.bin", "lock.tsv", ".lock.tsv.flock"} if pinned_by == "lock" else {"both.bin"})
    if pinned_by == "lock":
        assert lock.read_text() == f"key\tsha256\turl\nboth\t{sha(DATA)}\t{url}\n"


def test_two_fetch_each_of_one_file_take_turns(server, tmp_path):
    requests = [("a", server.add("/q/a", b"1\n", delay=0.3)), ("b", server.add("/q/b", b"2\n"))]
    lock, dest = tmp_path / "lock.tsv", tmp_path / "names.csv"
    _, errors = _twice_at_once(
        lambda: fetch_each(requests, dest, lambda answers: "".join(text for _, text in answers), lock=lock, key="names", **FAST)
    )
    assert errors == [] and dest.read_text() == "1\n2\n" and len(server.hits("/q/a")) == 1
    assert set(snapshot(tmp_path)) == {"names.csv", "lock.tsv", ".lock.tsv.flock"}


# ---------------------------------------------------------------- lock files that do not parse

H1, H2 = sha(b"one"), sha(b"two")
HEADER = "key\tsha256\turl\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER + f"<<<<<<< HEAD\na\t{H1}\thttps://x/a\n=======\na\t{H2}\thttps://x/a\n>>>>>>> theirs\n",
            r"line 2: merge-conflict marker '<<<<<<<'; resolve the conflict \(one row per key\) and run again",
        ),
        (f"<<<<<<< HEAD\n{HEADER}a\t{H1}\thttps://x/a\n", r"line 1: merge-conflict marker '<<<<<<<'"),
        (
            HEADER + f"a\t{H1}\thttps://x/a\nb\t{H2}\thttps://x/b\na\t{H2}\thttps://x/a\n",
            r"line 4: key 'a' again \(first on line 2\); keep one row per key",
        ),
        (HEADER + f"a\t{H1}\n", r"line 2: 2 tab-separated fields where the header has 3 \(key, sha256, url\)"),
        (HEADER + f"a\t{H1}\thttps://x/a\textra\n", r"line 2: 4 tab-separated fields where the header has 3"),
        (HEADER + "a\tnot-a-hash\thttps://x/a\n", r"line 2: sha256 of 'a' is not 64 hex characters \('not-a-hash'\)"),
        (HEADER + f"\t{H1}\thttps://x/a\n", r"line 2: a row without a key"),
    ],
    ids=["conflict", "conflict-at-top", "duplicate-key", "too-few-fields", "too-many-fields", "bad-hash", "no-key"],
)
def test_a_lock_file_that_does_not_parse_is_refused_naming_its_line(server, tmp_path, text, message):
    lock = tmp_path / "lock.tsv"
    lock.write_text(text)
    placed = tmp_path / "placed.csv"
    placed.write_text("x\n")
    before = snapshot(tmp_path)
    url = server.add("/a.bin", b"one")
    for call in (
        lambda: fetch(url, tmp_path / "a.bin", lock=lock, key="a", **FAST),
        lambda: fetch_each([("a", url)], tmp_path / "each.csv", lambda answers: "", lock=lock, key="each", **FAST),
        lambda: pin(placed, "a", lock),
    ):
        with pytest.raises(InputError) as error:
            call()
        assert one_line(error).startswith(f"{lock}: ") and re.search(message, str(error.value)), str(error.value)
    assert server.hits("/a.bin") == []  # refused before anything was asked
    assert snapshot(tmp_path) == before  # the lock untouched, nothing written


def test_a_clean_lock_with_blank_lines_placeholders_and_extra_columns_still_reads(server, tmp_path):
    lock = tmp_path / "lock.tsv"
    lock.write_text(f"key\tsha256\turl\tnote\n\nmiddle\t\thttps://x/m\tplaced later\nz\t{H1.upper()}\thttps://x/z\t\n")
    url = server.add("/m", b"middle")
    fetch(url, tmp_path / "m", lock=lock, key="middle", **FAST)
    assert lock.read_text() == (f"key\tsha256\turl\tnote\nmiddle\t{sha(b'middle')}\t{url}\tplaced later\nz\t{H1}\thttps://x/z\t\n")


# ---------------------------------------------------------------- archives expand under a cap

CAP = 1 << 20  # lowered from the real 16 GiB: each archive below expands to 16 MiB from a few KiB


def gzip_bomb(head: bytes, row: bytes, size: int = 16 << 20) -> bytes:
    """gzip of `head` then `row` repeated up to `size` bytes: a well-formed file that expands far."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = row * max(1, (1 << 20) // len(row))
    out = [packer.compress(head)] + [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(out) + packer.flush()


def tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


MTX_HEAD = b"%%MatrixMarket matrix coordinate integer general\n1 1 3000000\n"
BARON_HEAD = b",barcode,assigned_cluster,INS,GCG,SST\n"


def baron_tar(folder):
    from ingest.sources.baron import parse_baron

    path = tar(folder / "GSE84133_RAW.tar", {"GSM2230757_human1_umifm_counts.csv.gz": gzip_bomb(BARON_HEAD, b"c1,AA,beta,0,0,0\n")})
    return path, lambda: parse_baron(path)


def tenx_tar_of_mtx_gz(folder):
    from ingest.sources.zheng68k import read_10x_matrix

    path = tar(
        folder / "matrices.tar",
        {"hg19/matrix.mtx.gz": gzip_bomb(MTX_HEAD, b"1 1 1\n"), "hg19/genes.tsv": b"ENSG1\tG1\n", "hg19/barcodes.tsv": b"AAAC-1\n"},
    )
    return path, lambda: read_10x_matrix(path)


def tenx_tar_gz(folder):
    """The tar stream itself unpacks past the cap: refused from the member's header, before its data."""
    from ingest.sources.zheng68k import read_10x_matrix

    path = tar(
        folder / "fresh_68k.tar.gz",
        {"hg19/matrix.mtx": MTX_HEAD + b"1 1 1\n" * (3 << 20), "hg19/genes.tsv": b"ENSG1\tG1\n", "hg19/barcodes.tsv": b"AAAC-1\n"},
        "w:gz",
    )
    return path, lambda: read_10x_matrix(path)


def gz_table(folder):
    from ingest.sources.gse117872 import read_cellinfo

    path = folder / "GSE117872_good_Data_cellinfo.txt.gz"
    path.write_bytes(gzip_bomb(b"geo_accession\tcell_color\n", b"RHH2177\tSensitive\n"))
    return path, lambda: read_cellinfo(path)


def gz_gene_by_cell(folder):
    from ingest.sources.cancerscem import parse_cancerscem

    path = folder / "S1.counts.matrix.tsv.gz"
    path.write_bytes(gzip_bomb(b"gene\tc1\tc2\n", b"G\t0\t0\n"))
    return path, lambda: parse_cancerscem([path])


def string_links(folder):
    from ingest.sources.string_ppi import parse_string

    info = folder / "9606.protein.info.v12.0.txt.gz"
    info.write_bytes(gzip.compress(b"#string_protein_id\tpreferred_name\tprotein_size\tannotation\n9606.P1\tTP53\t393\tx\n"))
    path = folder / "9606.protein.links.v12.0.txt.gz"
    path.write_bytes(gzip_bomb(b"protein1 protein2 combined_score\n", b"9606.P1 9606.P1 900\n"))
    return path, lambda: parse_string(path, info)


def gdsc_zip(folder):
    from ingest.sources.gdsc import parse_gdsc_expression

    path = folder / "Cell_line_RMA_proc_basalExp.txt.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Cell_line_RMA_proc_basalExp.txt", b"GENE_SYMBOLS\tGENE_title\tDATA.906826\n" + b"TP53\tx\t3.5\n" * (1 << 20))
    return path, lambda: parse_gdsc_expression(path)


def gdsc_xlsx(folder):
    from ingest.sources.gdsc import read_gdsc_dose_response

    path = folder / "GDSC1_fitted_dose_response_27Oct23.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"<c/>" * (4 << 20))
    return path, lambda: read_gdsc_dose_response(path)


@pytest.mark.parametrize(
    "make",
    [baron_tar, tenx_tar_of_mtx_gz, tenx_tar_gz, gz_table, gz_gene_by_cell, string_links, gdsc_zip, gdsc_xlsx],
    ids=lambda make: make.__name__,
)
def test_an_archive_that_expands_past_the_cap_is_refused_in_one_line(tmp_path, monkeypatch, make):
    monkeypatch.setattr(common, "MAX_EXPANDED_BYTES", CAP)
    path, read = make(tmp_path)
    assert path.stat().st_size < CAP  # small on disk: only the expansion passes the cap
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as error:
        read()
    message = one_line(error)
    assert message.startswith(f"{path}: expands to more than 1 MiB when read")
    assert "MAX_EXPANDED_BYTES" in message and "damaged or hostile" in message
    assert snapshot(tmp_path) == before  # nothing extracted or written, the archive untouched


def test_the_same_archives_read_under_the_real_cap(tmp_path):
    """The cap is generous: 16 MiB of each layout reads (then fails or succeeds on its content, not its size)."""
    assert common.MAX_EXPANDED_BYTES >= 4 << 30  # real sources expand to a few GB at most
    for make in (tenx_tar_of_mtx_gz, tenx_tar_gz, gz_table, string_links):
        _, read = make(tmp_path)
        try:
            read()
        except InputError as exc:
            assert "expands to more than" not in str(exc)


def test_the_reported_bomb_is_refused_at_the_real_caps_with_memory_to_spare(tmp_path):
    """The report's case, as built: a 0.7 MB tar whose csv.gz expands to 720 MB of one line. Below the 16 GiB
    archive cap, it once ran out of memory in the csv reader; the line cap now refuses it after 64 MiB."""
    import resource

    from ingest.sources.baron import parse_baron

    member = gzip_bomb(BARON_HEAD, b"0" * 4096, size=720_000_000)  # one line of zeros after the header
    path = tar(tmp_path / "GSE84133_RAW.tar", {"GSM2230757_human1_umifm_counts.csv.gz": member})
    assert path.stat().st_size < 1_000_000 and common.MAX_EXPANDED_BYTES > 720_000_000
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as error:
        parse_baron(path)
    assert one_line(error).startswith(f"{path}:GSM2230757_human1_umifm_counts.csv.gz: a line runs past 64 MiB (MAX_LINE_BYTES")
    assert snapshot(tmp_path) == before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the whole test process, whatever ran before
    assert peak_mb < 4000, peak_mb
