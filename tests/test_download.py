"""The downloader, against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from celllm.errors import InputError
from ingest.download import fetch, fetch_each, pin, pin_sources, sha256_of

DATA = os.urandom(300_000)
FAST = {"progress": False, "backoff": 0.01, "timeout": 5.0, "chunk_size": 64 * 1024}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        state = self.server.state
        with state.guard:
            n = state.counts.get(self.path, 0)
            state.counts[self.path] = n + 1
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        mode = state.modes.get(self.path, {})
        if self.path not in state.files or "status" in mode:
            self.send_error(mode.get("status", 404))
            return
        if n < mode.get("fail_times", 0):
            self.send_error(500)
            return
        data = mode["then"] if n and "then" in mode else state.files[self.path]  # "then": changed after the first request
        start = 0
        wanted = self.headers.get("Range")
        etag = mode.get("etag")
        validator = etag or mode.get("last_modified")
        if self.headers.get("If-Range") not in (None, validator) and not mode.get("ignore_if_range"):
            wanted = None  # the file changed since the part began: all of it
        if wanted and not mode.get("no_range"):
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if etag:
            self.send_header("ETag", etag)
        if mode.get("last_modified"):
            self.send_header("Last-Modified", mode["last_modified"])
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        time.sleep(mode.get("delay", 0))
        if "cut_after" in mode and n < mode.get("cut_times", 1):
            # announce the full length, send part of it, then close: a dropped connection
            self.wfile.write(body[: mode["cut_after"]])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)
            return
        if "stall" in mode and n == 0:
            self.wfile.write(body[:10])
            time.sleep(mode["stall"])
            body = body[10:]
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # dropped connections are the point here
        pass


class FileServer:
    """In-memory files; `modes[path]` tells the server how to misbehave for that path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, dict] = {}
        self.counts: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        self.guard = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.state = self
        # a short poll interval keeps shutdown() (and so each test's teardown) quick
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def add(self, path: str, data: bytes = DATA, **mode) -> str:
        self.files[path] = data
        self.modes[path] = mode
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def hits(self, path: str) -> list[dict]:
        return [headers for p, headers in self.requests if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


def no_part(dest: Path) -> bool:
    return not dest.with_name(dest.name + ".part").exists()


# ---------------------------------------------------------------- fetch


def test_plain_download_records_then_verifies_lock(server, tmp_path):
    url = server.add("/a.bin")
    lock = tmp_path / "lock.tsv"
    dest = fetch(url, tmp_path / "one" / "a.bin", lock=lock, key="a_data", **FAST)
    assert dest.read_bytes() == DATA and no_part(dest)
    assert lock.read_text() == f"key\tsha256\turl\na_data\t{sha(DATA)}\t{url}\n"
    # a fresh destination with the same key is verified against the recorded hash
    again = fetch(url, tmp_path / "two" / "a.bin", lock=lock, key="a_data", **FAST)
    assert again.read_bytes() == DATA
    assert len(server.hits("/a.bin")) == 2
    assert sha256_of(again) == sha(DATA)


def test_lock_is_kept_sorted_and_placeholder_rows_are_filled(server, tmp_path):
    lock = tmp_path / "lock.tsv"
    lock.write_text("key\tsha256\turl\nmiddle\t\thttps://example.org/m\n")
    for key in ("zeta", "alpha", "middle"):
        fetch(server.add(f"/{key}", key.encode()), tmp_path / key, lock=lock, key=key, **FAST)
    lines = lock.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["key", "alpha", "middle", "zeta"]
    assert lines[2].split("\t")[1] == sha(b"middle")


def test_resume_after_cut_connection(server, tmp_path):
    url = server.add("/cut.bin", cut_after=100_000, etag='"v1"')
    dest = fetch(url, tmp_path / "cut.bin", sha256=sha(DATA), **FAST)
    assert dest.read_bytes() == DATA and no_part(dest)
    first, second = server.hits("/cut.bin")
    assert "range" not in first
    assert second["range"] == "bytes=100000-" and second["if-range"] == '"v1"'


def test_part_kept_when_attempts_run_out_and_resumed_next_run(server, tmp_path):
    url = server.add("/flaky.bin", cut_after=50_000, cut_times=99, etag='"v1"')
    dest = tmp_path / "flaky.bin"
    with pytest.raises(InputError, match=r"gave up after 2 attempts \(incomplete read"):
        fetch(url, dest, retries=2, **FAST)
    assert not dest.exists() and dest.with_name("flaky.bin.part").stat().st_size == 100_000
    server.modes["/flaky.bin"] = {"etag": '"v1"'}
    fetch(url, dest, retries=2, **FAST)
    assert dest.read_bytes() == DATA and no_part(dest)
    assert server.hits("/flaky.bin")[-1]["range"] == "bytes=100000-"


def test_a_first_download_resumes_only_its_own_part(server, tmp_path):
    """A first download's hash is pinned unverified: a stale .part (another run, another file) must not go into it."""
    url = server.add("/first.bin", etag='"v1"')
    lock = tmp_path / "lock.tsv"
    dest = tmp_path / "first.bin"
    dest.with_name("first.bin.part").write_bytes(b"junk from an older run" * 100)
    fetch(url, dest, lock=lock, key="first", **FAST)
    assert dest.read_bytes() == DATA and sha(DATA) in lock.read_text()
    assert "range" not in server.hits("/first.bin")[0]  # started from zero
    # an interrupted first download of this run is resumed, on the same version of the file only
    cut = server.add("/cut_first.bin", etag='"v1"', cut_after=100_000, cut_times=99)
    dest = tmp_path / "cut_first.bin"
    with pytest.raises(InputError, match="gave up"):
        fetch(cut, dest, lock=lock, key="cut_first", retries=1, **FAST)
    server.modes["/cut_first.bin"] = {"etag": '"v1"'}
    fetch(cut, dest, lock=lock, key="cut_first", **FAST)
    assert dest.read_bytes() == DATA and server.hits("/cut_first.bin")[-1]["if-range"] == '"v1"'
    assert server.hits("/cut_first.bin")[-1]["range"] == "bytes=100000-" and sha(DATA) in lock.read_text()
    changed = server.add("/changed.bin", data=b"old " * 50_000, etag='"v1"', cut_after=100_000, cut_times=99)
    dest = tmp_path / "changed.bin"
    with pytest.raises(InputError, match="gave up"):
        fetch(changed, dest, lock=lock, key="changed", retries=1, **FAST)
    server.add("/changed.bin", data=DATA, etag='"v2"')  # a new release meanwhile: If-Range gets all of it
    fetch(changed, dest, lock=lock, key="changed", **FAST)
    assert dest.read_bytes() == DATA and not dest.with_name("changed.bin.part.origin").exists()


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    url = server.add("/norange.bin", cut_after=120_000, no_range=True, etag='"v1"')
    dest = fetch(url, tmp_path / "norange.bin", sha256=sha(DATA), **FAST)
    assert dest.read_bytes() == DATA
    assert server.hits("/norange.bin")[1]["range"] == "bytes=120000-"  # asked, got a 200


def test_complete_part_answered_416_goes_to_verification(server, tmp_path):
    url = server.add("/done.bin", etag='"v1"')
    dest = tmp_path / "done.bin"
    dest.with_name("done.bin.part").write_bytes(DATA)  # as a run killed before its rename leaves it
    dest.with_name("done.bin.part.origin").write_text(json.dumps({"url": url, "version": '"v1"', "size": len(DATA)}))
    fetch(url, dest, sha256=sha(DATA), **FAST)
    assert dest.read_bytes() == DATA and no_part(dest)
    assert server.hits("/done.bin")[0]["range"] == f"bytes={len(DATA)}-"


def test_server_errors_are_retried(server, tmp_path):
    url = server.add("/busy.bin", fail_times=2)
    dest = fetch(url, tmp_path / "busy.bin", retries=3, **FAST)
    assert dest.read_bytes() == DATA
    assert len(server.hits("/busy.bin")) == 3


def test_timeout_is_retried(server, tmp_path):
    url = server.add("/slow.bin", stall=1.0, etag='"v1"')
    dest = fetch(url, tmp_path / "slow.bin", **{**FAST, "timeout": 0.2})
    assert dest.read_bytes() == DATA
    assert server.hits("/slow.bin")[1]["range"] == "bytes=10-"


def test_retries_exhausted(server, tmp_path):
    url = server.add("/down.bin", fail_times=99)
    dest = tmp_path / "down.bin"
    with pytest.raises(InputError) as info:
        fetch(url, dest, key="down", retries=3, **FAST)
    message = str(info.value)
    assert message.startswith(f"down: {url}: gave up after 3 attempts (HTTP 500")
    assert "\n" not in message
    assert len(server.hits("/down.bin")) == 3
    assert not dest.exists() and no_part(dest)


def test_refused_connection_gives_up(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(InputError, match=r"gave up after 2 attempts \(connection refused\)"):
        fetch(url, tmp_path / "x", retries=2, **FAST)


def test_404_fails_at_once(server, tmp_path):
    url = server.url("/missing.bin")
    dest = tmp_path / "missing.bin"
    with pytest.raises(InputError) as info:
        fetch(url, dest, key="string_links", **FAST)
    assert str(info.value) == f"string_links: {url}: HTTP 404 Not Found"
    assert len(server.hits("/missing.bin")) == 1
    assert not dest.exists() and no_part(dest)


def test_fetch_each_combines_answers_keeps_unknown_names_and_pins_the_result(server, tmp_path):
    lock = tmp_path / "lock.tsv"
    requests = [
        ("Erlotinib", server.add("/name/Erlotinib", b'"CID"\n176870\n')),
        ("Unknownib", server.url("/name/Unknownib")),
        ("Gefitinib", server.add("/name/Gefitinib", b'"CID"\n123631\n', fail_times=1)),
    ]  # a 500 first: retried

    def combine(answers):
        return "".join(f"{name}:{'none' if text is None else text.split()[-1]}\n" for name, text in answers)

    dest = fetch_each(requests, tmp_path / "pubchem_names.csv", combine, lock=lock, key="pubchem_names", **FAST)
    assert dest.read_text() == "Erlotinib:176870\nUnknownib:none\nGefitinib:123631\n"
    assert sha256_of(dest) in lock.read_text() and not (tmp_path / "pubchem_names.csv.parts").exists()
    # done and pinned: nothing is asked again; a changed file is refused by its pin
    assert fetch_each(requests, dest, combine, lock=lock, key="pubchem_names", **FAST) == dest
    assert len(server.hits("/name/Erlotinib")) == 1
    dest.write_text("edited\n")
    with pytest.raises(InputError, match="differs from the one pinned for 'pubchem_names'"):
        fetch_each(requests, dest, combine, lock=lock, key="pubchem_names", **FAST)
    # any other refusal than 'not found' stops the download
    server.add("/name/Forbidden", b"", status=403)
    with pytest.raises(InputError, match="HTTP 403"):
        fetch_each([("Forbidden", server.url("/name/Forbidden"))], tmp_path / "other.csv", combine, lock=lock, key="other", **FAST)
    assert not (tmp_path / "other.csv").exists()


def test_explicit_sha256_mismatch(server, tmp_path):
    url = server.add("/a.bin")
    dest = tmp_path / "a.bin"
    with pytest.raises(InputError, match=rf"a\.bin: .*: sha256 mismatch \(expected {'0' * 64}, got {sha(DATA)}\)"):
        fetch(url, dest, sha256="0" * 64, **FAST)
    assert not dest.exists() and no_part(dest)


def test_lock_sha256_mismatch(server, tmp_path):
    lock = tmp_path / "lock.tsv"
    url = server.add("/a.bin", b"original")
    fetch(url, tmp_path / "first" / "a.bin", lock=lock, key="a", **FAST)
    server.files["/a.bin"] = b"changed upstream"
    dest = tmp_path / "second" / "a.bin"
    with pytest.raises(InputError, match=rf"^a: {url}: sha256 mismatch \(expected {sha(b'original')}"):
        fetch(url, dest, lock=lock, key="a", **FAST)
    assert not dest.exists() and no_part(dest)
    assert sha(b"original") in lock.read_text()


def test_existing_verified_dest_is_not_requested(server, tmp_path):
    url = server.add("/a.bin")
    lock = tmp_path / "lock.tsv"
    dest = fetch(url, tmp_path / "a.bin", lock=lock, **FAST)
    for kwargs in ({"lock": lock}, {"sha256": sha(DATA)}, {}):
        assert fetch(url, dest, **kwargs, **FAST) == dest
    assert len(server.hits("/a.bin")) == 1
    # a dest that fails verification is fetched again
    dest.write_bytes(b"corrupt")
    fetch(url, dest, sha256=sha(DATA), **FAST)
    assert dest.read_bytes() == DATA and len(server.hits("/a.bin")) == 2


def test_bad_arguments(server, tmp_path):
    with pytest.raises(InputError, match="not a SHA-256"):
        fetch(server.add("/a.bin"), tmp_path / "a.bin", sha256="abc", **FAST)
    with pytest.raises(InputError, match="invalid URL"):
        fetch("not a url", tmp_path / "b.bin", **FAST)
    bad_lock = tmp_path / "bad.tsv"
    bad_lock.write_text("name\thash\nx\ty\n")
    with pytest.raises(InputError, match="lock file needs the columns"):
        fetch(server.url("/a.bin"), tmp_path / "c.bin", lock=bad_lock, **FAST)


def test_manual_source_says_where_to_get_it_and_where_to_save_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "lock.tsv"
    with pytest.raises(InputError) as error:
        fetch("manual:https://example.org/compounds", Path("raw/drugs/Drug_list.csv"), lock=lock, key="drugs", **FAST)
    message = str(error.value)
    assert "\n" not in message and "get it from https://example.org/compounds" in message
    assert f"save it as {tmp_path / 'raw/drugs/Drug_list.csv'}," in message  # absolute: right from any folder
    assert not (tmp_path / "raw").exists() and not lock.exists()
    placed = tmp_path / "raw/drugs/Drug_list.csv"
    placed.parent.mkdir(parents=True)
    placed.write_text("drug_id,Name\n")
    assert fetch("manual:https://example.org/compounds", placed, lock=lock, key="drugs", **FAST) == placed
    assert sha(b"drug_id,Name\n") in lock.read_text()  # pinned on first use


def test_pin_records_once_then_verifies_files_and_folders(tmp_path):
    lock = tmp_path / "lock.tsv"
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "a.RData").write_bytes(b"a")
    (folder / ".DS_Store").write_bytes(b"ignored")
    first = pin(folder, "panglaodb", lock, "manual:https://panglaodb.se")
    (folder / ".DS_Store").write_bytes(b"still ignored")
    assert pin(folder, "panglaodb", lock) == first == sha256_of(folder)
    (folder / "b.RData").write_bytes(b"b")  # a sample added: no longer the pinned folder
    with pytest.raises(InputError, match=r"samples: sha256 \w+ differs from the one pinned for 'panglaodb' in .*lock.tsv"):
        pin(folder, "panglaodb", lock)
    single = tmp_path / "x.csv"
    single.write_text("x")
    pin_sources({"x": single}, {"x": {"url": "manual:page", "sha256": "-"}}, lock)
    with pytest.raises(InputError, match="differs from the one the source table gives for 'x'"):
        pin_sources({"x": single}, {"x": {"url": "manual:page", "sha256": sha(b"y")}}, lock)
    with pytest.raises(InputError, match="gone.csv: not found"):
        pin(tmp_path / "gone.csv", "gone", lock)
