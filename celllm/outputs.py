"""Where the project writes, and what it may replace there.

Every folder a `celllm` command writes (a checkpoint, a token store) carries a
record, `celllm-record.json`: its kind, the command that made it, and the
SHA-256 of every file it wrote. The record is what makes a folder ours:

- an existing folder is replaced only if its record says it is of the same
  kind and it holds nothing the record does not list; anything else is refused
  in one line naming the files (a user's notes beside a checkpoint, a web app
  that happens to have a `manifest.json`, a folder of some older version);
- on use, the record ties the folder's files together, so an edited or
  swapped file is named instead of silently used (`verify_record`).

Outputs are also proven writable before any work (`check_output_folder`,
`check_output_file`): symlinks resolved, the real temporary sibling the save
will use created and removed, the current folder and read-only targets refused.
Saves go through `atomic_path`, and the hidden temporary folders of a killed
save are recovered or removed by the next save of the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from celllm.errors import InputError

log = logging.getLogger(__name__)

RECORD = "celllm-record.json"
RECORD_FORMAT = "celllm-record/1"
OWNER = ".celllm-writer"  # inside a temporary folder of atomic_path: host and process that made it
SHOWN = 5  # foreign files named in a message


def file_sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Every file under `folder` but the record, as sorted relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir() and p.name != RECORD)


def write_record(folder, kind: str, made_by: str, hashes: dict[str, str] | None = None, **extra) -> dict:
    """Record every file now in `folder` (reusing `hashes` already computed, name -> SHA-256); write it last."""
    from celllm import __version__

    folder, hashes = Path(folder), hashes or {}
    files = {name: hashes.get(name) or file_sha256(folder / name) for name in folder_files(folder)}
    record = {"format": RECORD_FORMAT, "kind": kind, "made_by": made_by, "celllm": __version__, **extra, "files": files}
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def read_record(folder) -> dict | None:
    """The record of `folder`, or None if it has none; InputError if it is not a readable record."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({type(exc).__name__}); the folder's files cannot be verified") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise InputError(f"{path}: not a record of this version (expected format {RECORD_FORMAT})")
    files = record.get("files")
    if not isinstance(record.get("kind"), str) or not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise InputError(f"{path}: malformed record (needs 'kind' and 'files': name -> SHA-256)")
    return record


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def foreign_files(folder, record: dict) -> list[str]:
    """Files in `folder` that its record does not list (put there by someone else)."""
    return [name for name in folder_files(Path(folder)) if name not in record["files"]]


def verify_record(folder, kind: str, skip: Iterable[str] = ()) -> dict | None:
    """Check that `folder`'s files are those its record lists, unchanged (but the names in `skip`).

    Returns the record (None for a folder written before records were kept, with a
    warning); InputError naming the first missing or changed file.
    """
    folder = Path(folder)
    record = read_record(folder)
    if record is None:
        log.warning("%s: has no %s (written by an older version), so its files cannot be verified", folder, RECORD)
        return None
    if record["kind"] != kind:
        raise InputError(f"{folder}: is a {record['kind']}, not a {kind}")
    for name, digest in record["files"].items():
        if name in skip:
            continue
        if not (folder / name).is_file():
            raise InputError(f"{folder / name}: missing; the {kind} is incomplete")
        if file_sha256(folder / name) != digest:
            raise InputError(
                f"{folder / name}: not the file this {kind} was written with (edited, replaced or damaged; {RECORD} "
                "has its SHA-256); restore it or write the folder again"
            )
    return record


def check_replaceable(out: Path, kind: str, replaces: Callable[[dict], str | None] | None = None) -> dict | None:
    """InputError unless the existing folder `out` may be replaced by a `kind`: empty, or of that kind by
    its record with nothing else in it. `replaces(record)` may refuse more (returns a reason). Returns the record."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    record = read_record(out)
    if record is None:
        found = _listing(folder_files(out))
        raise InputError(f"{out}: holds files no celllm command wrote ({found}); choose a new or empty folder (nothing was written)")
    if record["kind"] != kind:
        raise InputError(f"{out}: holds a {record['kind']}, not a {kind}; choose another folder (nothing was written)")
    foreign = foreign_files(out, record)
    if foreign:
        raise InputError(
            f"{out}: also holds files the {kind} did not write ({_listing(foreign)}), which replacing it would "
            "delete; move them out or choose another folder (nothing was written)"
        )
    reason = replaces(record) if replaces else None
    if reason:
        raise InputError(f"{out}: {reason} (nothing was written)")
    return record


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_writable(folder, what: str) -> None:
    """InputError unless a temporary folder can be made (and is then removed) in `folder` or, where it
    does not exist yet, in its nearest existing parent: what `atomic_path` will do when it saves."""
    folder = Path(folder).absolute()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise InputError(f"{what}: {existing} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".celllm-check.", dir=existing))
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {existing} ({exc.strerror or exc})") from None


def _check_target(out: Path, what: str, inputs: Iterable) -> Path:
    """The real path of output `out` (symlinks resolved), refused if it is or holds the current folder or an input."""
    resolved = out.resolve()
    for given in inputs:
        given = Path(given).resolve()
        if resolved == given:
            raise InputError(f"{out}: the {what} would replace the input {given}; choose another path")
        if _inside(given, resolved):
            raise InputError(f"{out}: holds the input {given}, which writing the {what} would delete; choose another folder")
        if _inside(resolved, given):
            raise InputError(f"{out}: the {what} would be written inside the input folder {given}; choose another path")
    if _inside(Path.cwd().resolve(), resolved):
        raise InputError(f"{out}: is the current folder or holds it; the {what} needs a folder of its own")
    return resolved


def check_output_folder(
    out, kind: str, inputs: Iterable = (), replaces: Callable[[dict], str | None] | None = None, keep: bool = False
) -> Path:
    """Check, before any work, that folder `out` can be written: it is new, empty, or a `kind` by its
    record holding nothing else (see `check_replaceable`); it holds none of `inputs`; it and its parent
    are writable. `keep`: the folder is written in place (resumed), so it must be writable itself.
    Returns the real path (a symlink's target), which is where the command must write."""
    given = Path(out)
    out = _check_target(given, kind, [p for p in inputs if p])
    if out.exists() and not out.is_dir():
        raise InputError(f"{given}: exists and is not a folder; the output must be a {kind} folder")
    check_replaceable(out, kind, replaces)
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"{given}: is read-only; the {kind} cannot be {'updated' if keep else 'replaced'} (nothing was written)")
    check_writable(out.parent, str(given))
    return out


def check_output_file(out, suffix: str, inputs: Iterable = (), what: str = "output", owned: Callable[[Path], bool] | None = None) -> Path:
    """Check, before any work, that file `out` can be written without destroying anything but an older file of its kind.

    `out` must end in `suffix`, must not be a folder nor be (or lie inside) one of `inputs`,
    its folder must be writable, and an existing file there must be one this command wrote
    (`owned(out)`). Returns the real path.
    """
    given = Path(out)
    if given.is_dir():
        raise InputError(f"{given}: is a folder; the {what} must be a {suffix} file (nothing was written)")
    if given.suffix != suffix:
        raise InputError(f"{given}: the {what} must be a {suffix} file")
    out = _check_target(given, what, inputs)
    if out.exists() and owned is not None and not owned(out):
        raise InputError(f"{given}: exists and was not written by this command; choose a new path (nothing was written)")
    if out.exists() and not os.access(out, os.W_OK):
        raise InputError(f"{given}: is read-only (nothing was written)")
    check_writable(out.parent, str(given))
    return out


def keep_foreign(old: Path, new: Path) -> list[str]:
    """Move into `new` the files of folder `old` that neither its record lists nor the save wrote:
    a save must not delete what a user put in the folder meanwhile. Returns their names."""
    try:
        listed = set((read_record(old) or {"files": {}})["files"])
    except InputError:  # an unreadable record lists nothing
        listed = set()
    written = set(folder_files(new)) | {RECORD}
    moved = [name for name in folder_files(old) if name not in listed and name not in written]
    for name in moved:
        (new / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(old / name, new / name)
    if moved:
        log.warning("%s: kept %s, which the save did not write", new.name, _listing(moved))
    return moved


def recover_interrupted_swap(path) -> bool:
    """Finish a folder replacement of `atomic_path` that a kill cut between its two renames.

    Then `path` is missing, the old version waits as `.{name}.*/{name}.previous` and the
    new one, complete, as `.{name}.*/{name}` (the first rename happens only once the new
    version is written). Moves the new version into place; returns whether it did.
    """
    path = Path(path)
    if path.exists():
        return False
    for leftover in sorted(path.parent.glob(f".{path.name}.*")):
        if (leftover / f"{path.name}.previous").is_dir() and (leftover / path.name).is_dir():
            try:
                os.replace(leftover / path.name, path)
            except FileNotFoundError:  # another process recovered it first
                pass
            shutil.rmtree(leftover, ignore_errors=True)
            return path.exists()
    return False


def _writer() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _abandoned(leftover: Path) -> bool:
    """Whether `leftover` is a temporary folder of `atomic_path` whose writer, on this host, is gone."""
    try:
        host, pid = (leftover / OWNER).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False  # not ours, or not readable: left alone
    if host != socket.gethostname():
        return False  # another machine of a cluster may still be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_leftovers(path) -> list[Path]:
    """Recover an interrupted folder swap of `path`, then remove the temporary folders of `path` whose
    writer was killed (only folders marked as atomic_path's, written on this host by a process now gone)."""
    path = Path(path)
    if recover_interrupted_swap(path):
        log.warning("%s: recovered from a save that was interrupted", path)
    removed = [p for p in sorted(path.parent.glob(f".{path.name}.*")) if p.is_dir() and _abandoned(p)]
    for leftover in removed:
        shutil.rmtree(leftover, ignore_errors=True)
    if removed:
        log.info("%s: removed %d temporary folder(s) of an interrupted run", path, len(removed))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only on success.

    Works for files and folders, so a killed or failed writer never leaves
    something that looks finished; the temporary folders a killed writer left are
    removed by the next one (`remove_leftovers`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    (tmp.parent / OWNER).write_text(_writer())
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # a folder cannot be replaced in one rename: move the old one aside first, so
            # that a kill between the two renames leaves it recoverable, never deleted
            keep_foreign(path, tmp)
            os.replace(path, tmp.parent / f"{path.name}.previous")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
