"""The one downloader that every download rule of the workflow uses.

`fetch` streams a URL to `dest.part` (never holding the file in memory),
resumes a partial `.part` with an HTTP Range request (only where the server
gave the part a validator, an ETag or Last-Modified, sent back as If-Range so
that a changed file comes back whole; without one it starts again from byte
0, as a spliced file would be pinned unnoticed), retries connection
errors, timeouts, short reads and 5xx answers a bounded number of times with
exponential backoff, and checks the SHA-256 of the result: against the hash it
is given, else against the row for its key in a lock file (a TSV with columns
key, sha256, url), else it records the hash there, so that the first download
pins the data and every later run verifies it. Only a verified file is renamed
to `dest`, in one `os.replace`, so a killed or failed download never looks
complete, and a `dest` that already verifies is not downloaded again.
Downloads of one `dest` at once (parallel jobs, two runs) take turns on a lock
file beside it (`.NAME.flock`): the later one finds the finished file and
verifies it. A lock file that does not parse cleanly (a merge-conflict marker,
a key listed twice, a row of the wrong shape) is refused, naming its line.
A `manual:PAGE` address names a page where a person gets the file: `fetch`
then stops with one line saying where to get it and where (absolute path) to
save it. `pin` verifies a file, or a folder of files, against its row of the
lock, or records it there on first use: how files placed by hand are pinned.
Archives are not unpacked: the parsers (ingest/sources) read them in place.
Every failure is a `celllm.errors.InputError` of one line naming the key or
file, the URL, and the reason. Standard library only (urllib), plus tqdm for
the progress bar.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from celllm import __version__
from celllm.errors import InputError
from celllm.outputs import atomic_path, file_sha256

try:  # POSIX: serialise concurrent writers of one lock file (parallel Snakemake jobs)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["fetch", "fetch_each", "pin", "pin_sources", "table_sha256", "sha256_of", "MANUAL", "HTTPStatusError"]

LOCK_COLUMNS = ("key", "sha256", "url")
MANUAL = "manual:"  # an address naming a page where a person gets the file
# 408/429 are the server asking us to come back later, so they are retried like a 5xx
_RETRY_STATUS = {408, 429}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class HTTPStatusError(InputError):
    """A request the server answered with a permanent error status (a 4xx but 408/429)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A failure worth another attempt; `reason` ends up in the final message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks; of a folder, of its files' relative paths and
    SHA-256s, sorted by path (hidden files left out), so a folder of samples pins like a file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        listing = "".join(f"{p.relative_to(path).as_posix()}\t{sha256_of(p)}\n" for p in files)
        return hashlib.sha256(listing.encode()).hexdigest()
    return file_sha256(path)


def pin(path: str | os.PathLike, key: str, lock: str | os.PathLike | None = None, url: str = "", sha256: str | None = None) -> str:
    """Verify `path` (a file or a folder) against `sha256`, else against the row `key` of the
    lock file, or record it there if the row has no hash yet (the first use of a file placed
    by hand); returns the hash. A mismatch is an InputError naming the file and both hashes.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found (source '{key}')")
    actual = sha256_of(path)
    if sha256 is not None:
        if actual != sha256.strip().lower():
            raise InputError(f"{path}: sha256 {actual} differs from the one the source table gives for '{key}' ({sha256})")
        return actual
    if lock is None:
        return actual
    lock = Path(lock)
    known = _read_lock(lock).get(key, {}).get("sha256")
    if known and known != actual:
        raise InputError(
            f"{path}: sha256 {actual} differs from the one pinned for '{key}' in {lock} ({known}); "
            f"put the pinned file back, or delete the row '{key}' from the lock to pin this one"
        )
    if not known:
        _record(lock, key, actual, url, f"{key}: {path}")
    return actual


def table_sha256(value: str) -> str | None:
    """The checksum a source table gives, or None where it says '-' (the lock file then holds it)."""
    value = str(value).strip().lower()
    return value if _SHA256.match(value) else None


def pin_sources(files: dict, sources: dict, lock: str | os.PathLike) -> None:
    """`pin` every file of `files` (source id -> path) with its row of the source table
    (`sources`: id -> {"url", "sha256"})."""
    for key, path in files.items():
        pin(path, key, lock, sources[key]["url"], table_sha256(sources[key]["sha256"]))


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    lock: str | os.PathLike | None = None,
    key: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: bool = True,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download `url` to `dest` and return `dest`, verified.

    url: an http(s) or file address, or `manual:PAGE` for a file a person places at
        `dest` by hand (pinned in the lock if it is there, else an InputError saying
        where to get it and where to save it).
    sha256: expected hex digest; when given, the lock file is neither read nor written.
    lock, key: a TSV (key, sha256, url); the row `key` (default: the file name of
        `dest`) is verified if it has a hash, recorded otherwise.
    retries: the total number of attempts for transient failures (connection
        errors, timeouts, short reads, 5xx, 408, 429); the wait before attempt
        k+1 is `backoff * 2**(k-1)` seconds. Other 4xx answers fail at once.
    timeout: seconds for connecting and for each read from the socket.
    A `dest.part` left by an earlier run is resumed if the server gave it a
    validator (ETag or Last-Modified) and still has that version, else fetched
    again from byte 0; it is kept when the attempts run out (so that the next
    run resumes) and deleted on a checksum mismatch or a permanent HTTP error.
    Concurrent calls for one `dest` run one after the other.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    lock = Path(lock) if lock is not None else None
    key = key or dest.name
    label = f"{key}: {url}"
    if url.startswith(MANUAL):
        if dest.exists():
            pin(dest, key, lock, url, sha256)
            return dest
        raise InputError(
            f"{key}: no stable download address; get it from {url[len(MANUAL) :]} and save it as {dest.resolve()}, then run again"
        )
    if dest.is_dir():
        raise InputError(f"{label}: destination {dest} is a folder")
    if sha256 is not None:
        if not _SHA256.match(sha256.strip().lower()):
            raise InputError(f"{label}: '{sha256}' is not a SHA-256 hex digest (64 hex characters)")
        lock = None
    elif lock is not None:
        _read_lock(lock)  # a lock that does not parse is refused before anything is asked or waited for
    with _held(_flock_of(dest), remove=True, waiting=f"{label}: waiting for another download of {dest} to finish"):
        # under the lock: a download that ran meanwhile has renamed its verified file to dest and pinned it
        return _fetch(url, dest, part, sha256, lock, key, label, retries, timeout, backoff, progress, chunk_size)


def _fetch(url, dest, part, sha256, lock, key, label, retries, timeout, backoff, progress, chunk_size) -> Path:
    if sha256 is not None:
        expected = sha256.strip().lower()
    elif lock is not None:
        expected = _read_lock(lock).get(key, {}).get("sha256") or None
    else:
        expected = None

    if dest.is_file():
        if expected is None:
            # dest is only ever created by a rename after verification, so it is complete
            if lock is not None:
                _record(lock, key, sha256_of(dest), url, label)
            return dest
        if sha256_of(dest) == expected:
            _discard(part)
            return dest
        dest.unlink()  # stale or corrupt: it must not look finished while we fetch again

    dest.parent.mkdir(parents=True, exist_ok=True)
    _download(url, part, dest.name, label, retries, timeout, backoff, progress, chunk_size)
    _origin_file(part).unlink(missing_ok=True)  # complete: nothing left to resume

    actual = sha256_of(part)
    if expected is not None and actual != expected:
        _discard(part)
        raise InputError(f"{label}: sha256 mismatch (expected {expected}, got {actual})")
    if expected is None and lock is not None:
        try:
            _record(lock, key, actual, url, label)
        except InputError:
            _discard(part)
            raise
    os.replace(part, dest)
    return dest


def fetch_each(
    requests: list[tuple[str, str]],
    dest: str | os.PathLike,
    combine,
    *,
    lock: str | os.PathLike | None = None,
    key: str | None = None,
    not_found: tuple[int, ...] = (404,),
    **options,
) -> Path:
    """One file from many requests: `requests` is a list of (value, address); each answer is
    fetched (resumably: answers already in `dest.parts/` are kept), `combine` turns the list of
    (value, answer text, or None where the server answered a status of `not_found`) into the
    file's text, which is written to `dest` and pinned in the lock like any first download.
    `options` go to `fetch` for every request (retries, timeout, backoff, progress).
    Concurrent calls for one `dest` run one after the other; the later one finds it made and pinned.
    """
    dest = Path(dest)
    key = key or dest.name
    if lock is not None:
        _read_lock(Path(lock))  # refused before anything is asked if it does not parse
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _held(_flock_of(dest), remove=True, waiting=f"{key}: waiting for another download of {dest} to finish"):
        return _fetch_each(requests, dest, combine, lock, key, not_found, options)


def _fetch_each(requests, dest: Path, combine, lock, key: str, not_found, options) -> Path:
    if dest.is_file() and lock is not None and _read_lock(Path(lock)).get(key, {}).get("sha256"):
        pin(dest, key, lock)  # already made and pinned: verified, not asked again
        return dest
    parts = dest.with_name(dest.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    answers = []
    for i, (value, url) in enumerate(tqdm(requests, desc=key, unit="request", disable=not options.get("progress", True), leave=False)):
        part = parts / f"{i:05d}"
        try:
            fetch(url, part, key=f"{key} ({value})", **{**options, "progress": False})
            answers.append((value, part.read_text(encoding="utf-8")))
        except HTTPStatusError as exc:
            if exc.status not in not_found:
                raise
            answers.append((value, None))
    text = combine(answers)
    with atomic_path(dest) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    try:
        pin(dest, key, lock, url=requests[0][1] if requests else "")
    except InputError:
        dest.unlink(missing_ok=True)
        raise
    for part in parts.iterdir():
        part.unlink()
    parts.rmdir()
    return dest


# ---------------------------------------------------------------- download


def _download(url, part, name, label, retries, timeout, backoff, progress, chunk_size) -> None:
    attempts = max(1, int(retries))
    reason = ""
    for attempt in range(1, attempts + 1):
        try:
            _attempt(url, part, name, label, timeout, progress, chunk_size)
            return
        except _Transient as exc:
            reason = exc.reason
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    plural = "attempt" if attempts == 1 else "attempts"
    raise InputError(f"{label}: gave up after {attempts} {plural} ({reason})")


def _origin_file(part: Path) -> Path:
    """Beside a partial download: its address, the server's validator of the file (ETag or
    Last-Modified, None where it gave neither) and the file's full size."""
    return part.with_name(part.name + ".origin")


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _origin_file(part).unlink(missing_ok=True)


def _validator(headers) -> str | None:
    """What If-Range can send back: a strong ETag, else Last-Modified (a weak ETag never matches a Range)."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _read_origin(origin: Path) -> dict:
    try:
        return json.loads(origin.read_text())
    except (OSError, ValueError):
        return {}


def _attempt(url, part, name, label, timeout, progress, chunk_size) -> None:
    """One request; returns when `part` holds the whole body, raises _Transient or InputError."""
    offset = part.stat().st_size if part.is_file() else 0
    origin = _read_origin(_origin_file(part)) if offset else {}
    if origin.get("url") != url or not origin.get("version"):
        # no validator (or another address's part): nothing could tell the server's file changed since
        # the part began, and the old first bytes spliced onto the new rest would be pinned. From byte 0.
        offset = 0
    # identity encoding: byte counts and Range offsets must refer to the file itself
    headers = {"User-Agent": f"celllm/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        # If-Range: the rest of the file only if it is still the version the part began with (else all of it)
        headers["If-Range"] = origin["version"]
    try:
        request = urllib.request.Request(url, headers=headers)
    except ValueError as exc:
        raise InputError(f"{label}: invalid URL ({exc})") from None

    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # nothing left to send: the part is complete, unless the server says it is larger
            total = _content_range(exc.headers.get("Content-Range"))[1]
            if total is None or total == offset:
                return
            _discard(part)
            raise _Transient(f"HTTP 416 for a partial file of {offset} of {total} bytes") from None
        reason = f"HTTP {exc.code} {exc.reason}".rstrip()
        if exc.code >= 500 or exc.code in _RETRY_STATUS:
            raise _Transient(reason) from None
        _discard(part)
        raise HTTPStatusError(f"{label}: {reason}", exc.code) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise _Transient(_describe(exc)) from None

    with response:
        status = getattr(response, "status", None) or 200  # file:// answers without a status
        length = _int(response.headers.get("Content-Length"))
        if offset and status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                _discard(part)
                raise _Transient(f"server resumed at byte {start} instead of {offset}")
            now = _validator(response.headers)
            if (now is not None and now != origin["version"]) or (total is not None and origin.get("size") not in (None, total)):
                # a server that ignores If-Range: its rest belongs to another version of the file
                _discard(part)
                raise _Transient("the file changed on the server since the partial download began")
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
        else:  # a 200 (to a Range request: the server cannot resume, or the file changed): start from zero
            offset, total, mode = 0, length, "wb"

        # read1 returns what has arrived, so a timeout or drop loses nothing already received
        read = getattr(response, "read1", response.read)
        received = 0
        try:
            out = open(part, mode)
            if mode == "wb":
                _origin_file(part).write_text(json.dumps({"url": url, "version": _validator(response.headers), "size": length}))
        except OSError as exc:
            raise InputError(f"{label}: cannot write {part} ({exc.strerror or exc})") from None
        with (
            out,
            tqdm(
                total=total, initial=offset, desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress, leave=False
            ) as bar,
        ):
            while True:
                try:
                    chunk = read(chunk_size)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(_describe(exc)) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise InputError(f"{label}: cannot write {part} ({exc.strerror or exc})") from None
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns b"" rather than raising when a connection closes early
    if length is not None and received < length:
        raise _Transient(f"incomplete read: got {received} of {length} bytes")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    elif isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "server closed the connection"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionAbortedError):
        return "connection aborted"
    if isinstance(exc, http.client.IncompleteRead):
        return "incomplete read"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of 'bytes 100-199/1000' or 'bytes */1000'; None where absent."""
    match = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


# ---------------------------------------------------------------- lock file


_CONFLICT = re.compile(r"^(<{7}|={7}|>{7}|\|{7})(\s|$)")


def _read_lock(lock: Path) -> dict[str, dict[str, str]]:
    """The rows of a lock file by key. Anything that does not parse cleanly is refused with its line:
    read leniently, a merge conflict's later hash would win and be trusted as the pin."""
    lock = Path(lock)
    if not lock.exists():
        return {}
    try:
        with open(lock, newline="", encoding="utf-8-sig") as fh:  # -sig: an editor's byte-order mark is no column name
            reader = csv.reader(fh, delimiter="\t")
            rows: dict[str, dict[str, str]] = {}
            lines: dict[str, int] = {}
            columns: list[str] = []
            for fields in reader:
                line = reader.line_num
                if fields and _CONFLICT.match(fields[0]):
                    raise InputError(
                        f"{lock}: line {line}: merge-conflict marker '{fields[0][:7]}'; "
                        f"resolve the conflict (one row per key) and run again"
                    )
                if not any(f.strip() for f in fields):
                    continue  # a blank line
                if not columns:
                    columns = [f.strip() for f in fields]
                    missing = [c for c in LOCK_COLUMNS if c not in columns]
                    if missing:
                        raise InputError(f"{lock}: lock file needs the columns {', '.join(LOCK_COLUMNS)} (missing: {', '.join(missing)})")
                    continue
                if len(fields) != len(columns):
                    raise InputError(
                        f"{lock}: line {line}: {len(fields)} tab-separated fields where the header has "
                        f"{len(columns)} ({', '.join(columns)})"
                    )
                row = {c: v.strip() for c, v in zip(columns, fields)}
                key, digest = row["key"], row["sha256"].lower()
                if not key:
                    raise InputError(f"{lock}: line {line}: a row without a key")
                if digest and not _SHA256.match(digest):
                    raise InputError(f"{lock}: line {line}: sha256 of '{key}' is not 64 hex characters ({row['sha256'][:70]!r})")
                if key in rows:
                    raise InputError(f"{lock}: line {line}: key '{key}' again (first on line {lines[key]}); keep one row per key")
                row["sha256"] = digest
                rows[key], lines[key] = row, line
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{lock}: cannot read the lock file ({exc})") from None


def _flock_of(dest: Path) -> Path:
    """The lock file that every download of `dest` holds while it runs, beside its .part."""
    return dest.with_name(f".{dest.name}.flock")


@contextlib.contextmanager
def _held(path: Path, remove: bool, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing); with `remove`, delete it before releasing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        guard = open(path, "a")
        if fcntl is None:  # pragma: no cover - Windows: no lock
            break
        try:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting:
                    print(waiting, file=sys.stderr, flush=True)
                fcntl.flock(guard, fcntl.LOCK_EX)
            # the holder before us may have removed the file as it finished: then lock the one now at the path
            try:
                here = os.stat(path)
            except FileNotFoundError:
                here = None
            mine = os.fstat(guard.fileno())
            if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except BaseException:
            guard.close()
            raise
        guard.close()
    try:
        yield
    finally:
        if remove and fcntl is not None:
            path.unlink(missing_ok=True)  # still held: a waiter sees it gone and locks a new one
        guard.close()  # releases the flock


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    # the lock file itself is replaced on every write, so the flock lives on a stable sidecar
    with _held(lock.with_name(f".{lock.name}.flock"), remove=False):
        yield


def _record(lock: Path, key: str, digest: str, url: str, label: str) -> None:
    """Add or complete the row `key`, rewriting the file sorted by key, atomically."""
    with _exclusive(lock):
        rows = _read_lock(lock)  # re-read under the lock: another job may have written meanwhile
        known = rows.get(key, {}).get("sha256")
        if known:
            if known != digest:
                raise InputError(f"{label}: sha256 mismatch (expected {known}, got {digest})")
            return
        columns = list(LOCK_COLUMNS) + sorted({c for r in rows.values() for c in r} - set(LOCK_COLUMNS))
        rows[key] = {**rows.get(key, {}), "key": key, "sha256": digest, "url": url}
        with atomic_path(lock) as tmp:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns, delimiter="\t", lineterminator="\n", restval="")
                writer.writeheader()
                for name in sorted(rows):
                    writer.writerow(rows[name])
