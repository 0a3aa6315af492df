"""What the source parsers share: opening plain or gzipped text, reading archives with a cap on
what they expand to (`MAX_EXPANDED_BYTES`), reading a genes x cells
table or a tab-separated annotation table, checking a numeric expression block, joining
samples and naming them, and the count-scale fields of a sample corpus. Duplicate genes are summed by
`celllm.genes.sum_duplicate_genes`, the rule the gene-symbol mapping uses too.

(A leading underscore: this module parses no source of its own.)
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celllm.errors import InputError

# The most bytes one archive or compressed file may expand to when read, all its members together:
# above it a gzip, tar.gz or zip built to expand without end (a "bomb") is refused in one line, not
# read until memory or disk runs out. Why 16 GiB: the real sources are far smaller. Estimated from the
# shapes their modules' docstrings give (none could be downloaded here): zheng68k's matrix.mtx, 37.3M
# non-zeros at ~15 bytes a line, ~0.6 GB; Baron's four human csv.gz, 8,569 cells x 20,125 genes at
# >= 2 bytes a value, ~0.35 GB. Those whose shape is not given (STRING's links, a dense CancerSCEM or
# GEO sample) are taken as a few GB at most. 16 GiB leaves several times that, and a bomb is stopped
# after reading at most 16 GiB (tens of seconds).
MAX_EXPANDED_BYTES = 16 << 30
# The longest line a text parser may hold at once. A bomb need not pass the archive cap to exhaust
# memory: 720 MB without a newline is one line, which csv and pandas hold whole, several times over.
# The widest real line is a dense gene x cell table's (GEO, CancerSCEM: a gene over some ten thousand
# cells, well under 1 MB; Baron's cell over 20,125 genes ~0.1 MB), so 64 MiB is ample.
MAX_LINE_BYTES = 64 << 20
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz: what tarfile's "r:*" unpacks


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


class Expansion:
    """The bytes one archive or compressed file (`source`) has expanded to so far, refused above the cap."""

    def __init__(self, source: str | os.PathLike):
        self.source = source
        self.cap = MAX_EXPANDED_BYTES  # read when the file is opened, so that a test can lower it
        self.total = 0

    def add(self, n: int, where: str | os.PathLike | None = None) -> None:
        self.total += n
        if self.total > self.cap:
            where = str(where).removeprefix(f"{self.source}:") if where is not None else None
            at = f" (reading {where})" if where is not None and where != str(self.source) else ""
            raise InputError(
                f"{self.source}: expands to more than {_size(self.cap)} when read{at}, the cap on one archive or "
                f"compressed file (MAX_EXPANDED_BYTES, ingest/sources/_common.py): damaged or hostile, not the source file"
            )


class _Capped(io.RawIOBase):
    """A decompressing stream whose output is counted against an Expansion."""

    def __init__(self, stream: IO[bytes], expansion: Expansion, where, closes: Sequence[IO[bytes]] = ()):
        self._stream, self._expansion, self._where, self._closes = stream, expansion, where, closes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        self._expansion.add(n or 0, self._where)
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                for stream in (self._stream, *self._closes):
                    stream.close()
            finally:
                super().close()


class _LinesCapped(io.RawIOBase):
    """A text file's bytes, refused in one line once a line runs past MAX_LINE_BYTES (see there)."""

    def __init__(self, stream: IO[bytes], where, closes: Sequence[IO[bytes]] = ()):
        self._stream, self._where, self._closes = stream, where, closes
        self._cap, self._run = MAX_LINE_BYTES, 0  # the cap read when the file is opened, so that a test can lower it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        if n:
            last = bytes(memoryview(buffer)[:n]).rfind(b"\n")
            self._run = self._run + n if last < 0 else n - last - 1
            if self._run > self._cap:
                raise InputError(
                    f"{self._where}: a line runs past {_size(self._cap)} (MAX_LINE_BYTES, ingest/sources/_common.py), "
                    "far wider than any real table's: damaged or hostile, not the source file"
                )
        return n

    def close(self) -> None:
        if not self.closed:
            for stream in (self._stream, *self._closes):
                stream.close()
        super().close()


def _text(binary: IO[bytes], where, closes: Sequence[IO[bytes]] = ()) -> IO[str]:
    return io.TextIOWrapper(io.BufferedReader(_LinesCapped(binary, where, closes), buffer_size=1 << 20), encoding="utf-8", newline="")


def gunzipped(fileobj: IO[bytes], expansion: Expansion, where=None, closes: Sequence[IO[bytes]] = ()) -> IO[bytes]:
    """The gzip stream `fileobj` (named `where`) decompressed, refused once it passes the cap of `expansion`;
    closing it closes `closes` too (the file it reads, where the caller hands that over)."""
    return io.BufferedReader(_Capped(gzip.GzipFile(fileobj=fileobj, mode="rb"), expansion, where, closes), buffer_size=1 << 20)


def tar_members(archive: tarfile.TarFile, path: str | os.PathLike, expansion: Expansion) -> list[tarfile.TarInfo]:
    """The members of an open tar, read header by header. A compressed tar counts its unpacked stream
    against `expansion`, each member's end checked from its header before its data is unpacked."""
    with open(path, "rb") as fh:
        compressed = fh.read(6).startswith(_COMPRESSED)
    members, end = [], 0
    while (member := archive.next()) is not None:
        if compressed:
            expansion.add(max(0, member.offset_data + member.size - end), f"{path}:{member.name}")
            end = max(end, member.offset_data + member.size)
        members.append(member)
    return members


def check_zip(path: str | os.PathLike) -> None:
    """Refuse a zip (an .xlsx too) whose members declare more than the cap in all. zipfile never reads a
    member past its declared size, so those sizes bound what pandas or openpyxl unpack from it."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile):
        return  # not readable as a zip: the reader that follows says so, naming the file
    Expansion(path).add(total)


def existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path; InputError if it is not an existing file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a file, found a folder")
    return path


def open_text(path: str | os.PathLike | Path, fileobj: IO[bytes] | None = None, expansion: Expansion | None = None) -> IO[str]:
    """Open a plain or gzip-compressed text file (decided by the magic bytes, not the name).

    With `fileobj` (a seekable binary stream, e.g. a tar member) that stream is
    read instead of `path`. A gzip stream is refused in one line once it expands
    past MAX_EXPANDED_BYTES (counted in `expansion`, shared by an archive's members),
    and any text once a line runs past MAX_LINE_BYTES.
    """
    if fileobj is None:
        raw = open(path, "rb")
        head = raw.read(2)
        raw.seek(0)
        if head == b"\x1f\x8b":
            return _text(gunzipped(raw, expansion or Expansion(path), path, closes=(raw,)), path)
        return _text(raw, path)
    head = fileobj.read(2)
    fileobj.seek(0)
    if head == b"\x1f\x8b":
        fileobj = gunzipped(fileobj, expansion or Expansion(path), path)
    return _text(fileobj, path)


def split_line(line: str, sep: str) -> list[str]:
    """Split one text line on `sep`, honouring double quotes (R's write.table quotes names)."""
    return next(csv.reader([line.rstrip("\r\n")], delimiter=sep))


def read_gene_by_cell_table(path: str | os.PathLike, sep: str = "\t", chunk_rows: int = 2000) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Read a text table with one row per gene and one column per cell.

    The first column holds gene names; the header holds cell names, with or
    without a leading field for the gene column (R's ``write.table`` leaves it
    out, pandas writes it). Returns ``(X, genes, cells)`` with X a float32 CSR
    cells x genes matrix. The table is read in chunks of `chunk_rows` genes and
    each chunk is made sparse at once, so a sample never exists as a dense
    cells x genes array. Raises InputError naming the file for every problem.
    """
    path = name = existing_file(path)
    kind = "tab" if sep == "\t" else repr(sep)
    try:
        with open_text(path) as fh:
            header_line = fh.readline()
            first_line = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not a readable text table ({type(exc).__name__}: {exc})") from None
    if not header_line.strip():
        raise InputError(f"{name}: empty file (expected a header of cell names)")
    header = split_line(header_line, sep)
    if not first_line.strip():
        raise InputError(f"{name}: no gene rows after the header")
    n_fields = len(split_line(first_line, sep))
    if n_fields == len(header) + 1:
        cells = header
    elif n_fields == len(header):
        cells = header[1:]
    else:
        raise InputError(
            f"{name}: the header has {len(header)} fields but the first gene row has {n_fields} "
            f"(wrong separator? expected {kind}-separated genes x cells)"
        )
    if not cells:
        raise InputError(f"{name}: no cells (the header names no cell columns)")
    if len(set(cells)) != len(cells):
        dup = pd.Index(cells)[pd.Index(cells).duplicated()][0]
        raise InputError(f"{name}: duplicated cell name '{dup}' in the header")

    blocks, genes = [], []
    try:
        with open_text(path) as fh:
            fh.readline()  # header, parsed above
            for chunk in pd.read_csv(
                fh, sep=sep, header=None, index_col=0, chunksize=chunk_rows, dtype={0: str}, keep_default_na=True, low_memory=False
            ):
                if chunk.shape[1] != len(cells):
                    raise InputError(f"{name}: a gene row has {chunk.shape[1]} values for {len(cells)} cells")
                try:
                    values = chunk.to_numpy(dtype=np.float32)
                except (ValueError, TypeError):
                    bad = _first_non_numeric(chunk)
                    raise InputError(f"{name}: non-numeric expression value {bad!r} (expected numbers in a genes x cells table)") from None
                blocks.append(sp.csr_matrix(values))
                genes.extend(chunk.index.tolist())
    except InputError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{name}: not a valid {kind}-separated table "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
        ) from None
    if any((not isinstance(g, str)) or not g.strip() for g in genes):
        raise InputError(f"{name}: a gene row has an empty gene name")
    X = sp.vstack(blocks, format="csr").T.tocsr()
    return X.astype(np.float32), genes, cells


def _first_non_numeric(frame: pd.DataFrame) -> str:
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][values.isna() & frame[column].notna()]
        if len(bad):
            return str(bad.iloc[0])
    return "?"


def count_scale(X: sp.spmatrix) -> str:
    """'raw_counts' if every stored value is an integer, else 'unverified_non_integer'."""
    data = X.data
    if data.size and not np.all(np.isfinite(data)):
        return "unverified_non_integer"
    return "raw_counts" if np.all(data == np.round(data)) else "unverified_non_integer"


def concat_samples(adatas: Sequence[ad.AnnData]) -> ad.AnnData:
    """Concatenate per-sample AnnData over the union of genes (missing genes are zeros)."""
    if len(adatas) == 1:
        return adatas[0]
    merged = ad.concat(list(adatas), join="outer", merge="same", fill_value=0)
    merged.X = sp.csr_matrix(merged.X, dtype=np.float32)
    return merged


def sample_name(path: Path, suffixes: Iterable[str]) -> str:
    """File name without the first matching suffix."""
    name = path.name
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return re.sub(r"(\.gz)?$", "", name)


def check_full_header(table: pd.DataFrame, path, what: str) -> None:
    """One line naming the file when pandas read `table` under a header cut short: given rows with more
    fields than the header names, it takes the extra leading fields as an index and shifts every column."""
    if not isinstance(table.index, pd.RangeIndex):
        raise InputError(
            f"{path}: its rows have {len(table.columns) + table.index.nlevels} fields but its header names {len(table.columns)} "
            f"columns (a header cut short would shift every column); expected the {what} with a full header"
        )


def read_header(path: str | os.PathLike, what: str, *, sep: str = ",") -> list[str]:
    """The names of a delimited text table's first line, stripped (a UTF-8 byte-order mark too) as
    `read_table` strips them; one line naming the file for a missing, unreadable or empty file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found" if not path.exists() else f"{path}: expected the {what}, found a folder")
    try:
        with open_text(path) as fh:
            line = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
    if not line.strip():
        raise InputError(f"{path}: empty file; expected the {what}")
    return [name.replace("\ufeff", "").strip() for name in split_line(line, sep)]


def read_table(
    path: str | os.PathLike,
    what: str,
    required: Sequence[str] = (),
    *,
    sep: str = ",",
    case_insensitive: bool = False,
    fileobj: IO[bytes] | None = None,
    text: bool = True,
    columns: Sequence[int] | None = None,
) -> pd.DataFrame:
    """A delimited text table (plain or gzipped) read as text, its header checked by name.

    Empty cells stay "". With `text=False` pandas infers each column's type instead (a numeric
    matrix such as DepMap's expression then takes a third of the memory of its text). `columns`:
    the positions of the only columns to read (from `read_header`), so that a wide matrix costs
    the memory of the columns it needs. The header's names are stripped (a UTF-8 byte-order mark too).
    One line naming the file (and `what` it should be) refuses: a missing file, an
    unreadable table, a row with more fields than the header has names (pandas would
    otherwise take the extra leading fields as an index and shift every column), and a
    header without the `required` columns (matched ignoring case with `case_insensitive`;
    the columns are then renamed to the spelling of `required`).
    """
    path = Path(path)
    if fileobj is None:
        if not path.exists():
            raise InputError(f"{path}: {what} not found")
        if path.is_dir():
            raise InputError(f"{path}: expected the {what}, found a folder")
    kind = "tab-separated" if sep == "\t" else "comma-separated" if sep == "," else f"{sep!r}-separated"
    try:
        with open_text(path, fileobj) as fh:
            # with `columns`, pandas' chunked tokenizer: the memory of the kept columns (low_memory=False holds a token
            # of every field: 850 MB for DepMap's 150 MB mutation matrix, 155 MB chunked, for 706 of its 19,500 genes)
            table = pd.read_csv(
                fh,
                sep=sep,
                low_memory=columns is not None,
                usecols=None if columns is None else list(columns),
                **({"dtype": str, "keep_default_na": False} if text else {}),
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"{path}: not a readable {kind} {what} ({type(exc).__name__}{': ' + detail if detail else ''})") from None
    check_full_header(table, path, what)
    table.columns = [str(c).replace("\ufeff", "").strip() for c in table.columns]
    if case_insensitive:
        wanted = {c.casefold(): c for c in required}
        table.columns = [wanted.get(c.casefold(), c) for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        shown = ", ".join(table.columns[:12]) + (", ..." if len(table.columns) > 12 else "")
        raise InputError(f"{path}: missing column(s) {', '.join(map(repr, missing))} (has: {shown or 'none'}); expected the {what}")
    return table


def expression_block(frame: pd.DataFrame, path, where, scale_hint: str) -> np.ndarray:
    """`frame` as float64, every value a finite non-negative number, else one line naming the file:
    `where(row, column)` names the first bad value, `scale_hint` says what the values should be."""
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputError(f"{path}: {int(bad.sum())} expression values are missing or not numbers (first: {where(row, column)})")
    if (values < 0).any():
        raise InputError(f"{path}: negative expression values; {scale_hint}")
    return values


def corpus_scale(scales: set[str]) -> tuple[str, str]:
    """(count_scale, value_scale) of a corpus joined from samples of the given count scales."""
    raw = scales == {"raw_counts"}
    return ("raw_counts", "counts") if raw else ("unverified_non_integer", "unverified")


def describe_real(adata: ad.AnnData, dataset: str, count_scale: str, value_scale: str, *, source: str, **facts) -> ad.AnnData:
    """Set the standard contract's .uns of a parsed real dataset (whatever it held is dropped):
    its name, not simulated, the scales of .X, where it came from, and any other `facts`."""
    adata.uns.clear()
    adata.uns.update(dataset=dataset, simulated=False, count_scale=count_scale, value_scale=value_scale, source=source, **facts)
    return adata


def categorical_obs(adata: ad.AnnData, columns: Iterable[str]) -> None:
    """The given .obs columns as categories of their text (h5ad stores them compactly)."""
    for column in columns:
        adata.obs[column] = pd.Categorical(adata.obs[column].astype(str))
