"""Tests for vww.data.download and scripts/download_file.py against a real local HTTP server."""

import hashlib
import logging
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vww.data.download import ChecksumError, DownloadError, download, tar_tree_sha256

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "scripts" / "download_file.py"

PAYLOAD = random.Random(2014).randbytes(300_000)
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_MD5 = hashlib.md5(b"not the payload").hexdigest()
FAST = dict(backoff_s=0.001, timeout_s=5.0)  # retries must not slow the tests down


class _State:
    """What the test server serves and what it saw. The tests read and set it."""

    def __init__(self, payload):
        self.payload = payload
        self.ranges = []          # the Range header of each request (None if absent)
        self.bytes_sent = 0       # body bytes sent, over all requests
        self.cut_first_after = None  # close the first response after this many body bytes
        self.stall_first_after = None  # ... or go silent after this many, until `release`
        self.release = threading.Event()
        self.ignore_range = False    # answer 200 with everything, as some servers do
        self.cut_all_after = None    # close every response after this many body bytes
        # (size, every_s, for_s): send the body `size` bytes every `every_s` seconds, and
        # close the connection after `for_s` seconds at most, as a throttled server would.
        self.trickle = None
        self.statuses = []        # error statuses for the next requests, one each
        self.lock = threading.Lock()
        self.url = None


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        st = self.server.state
        rng = self.headers.get("Range")
        with st.lock:
            st.ranges.append(rng)
            first = len(st.ranges) == 1
            status = st.statuses.pop(0) if st.statuses else None
        if status is not None:
            self.send_error(status)
            return

        data, start = st.payload, 0
        if rng and not st.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
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
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

        if st.trickle is not None:
            self._trickle(body, *st.trickle)
            return
        if st.cut_all_after is not None:
            body = body[:st.cut_all_after]
            with st.lock:
                st.bytes_sent += len(body)
            self.wfile.write(body)
            self.close_connection = True  # short of Content-Length: the client sees a cut
            return
        cut = first and st.cut_first_after is not None
        stall = first and st.stall_first_after is not None
        if cut or stall:
            body = body[:st.cut_first_after if cut else st.stall_first_after]
        with st.lock:  # count before writing: the client may assert as soon as it has the bytes
            st.bytes_sent += len(body)
        self.wfile.write(body)
        if stall:
            st.release.wait(10)  # the client must give up first (its read times out)
            self.close_connection = True
        if cut:
            # Headers promised the full length. Close the connection after the
            # first K bytes, as a dropped connection would.
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    def _trickle(self, body, size, every_s, for_s):
        """Send ``size`` bytes every ``every_s`` s, stopping after ``for_s`` s by itself."""
        st = self.server.state
        self.close_connection = True
        stop = time.monotonic() + for_s
        for i in range(0, len(body), size):
            if time.monotonic() > stop:
                return
            piece = body[i:i + size]
            with st.lock:
                st.bytes_sent += len(piece)
            try:
                self.wfile.write(piece)
            except OSError:  # the client gave up and closed the connection
                return
            time.sleep(every_s)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy set in the environment must not intercept 127.0.0.1.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State(PAYLOAD)
    httpd.state.url = f"http://127.0.0.1:{httpd.server_port}/zips/train2014.zip"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield httpd.state
    httpd.state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "raw" / "train2014.zip"


def _part(dest):
    return Path(str(dest) + ".part")


def _assert_nothing_left(dest):
    assert not dest.exists()
    assert not _part(dest).exists()


def test_full_download(server, dest):
    download(server.url, dest, PAYLOAD_MD5, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert server.ranges == [None]


def test_md5_is_compared_case_insensitively(server, dest):
    download(server.url, dest, PAYLOAD_MD5.upper(), **FAST)
    assert dest.read_bytes() == PAYLOAD


def test_resumes_after_cut_connection(server, dest):
    k = len(PAYLOAD) // 3
    server.cut_first_after = k
    download(server.url, dest, PAYLOAD_MD5, retries=3, **FAST)
    assert server.ranges == [None, f"bytes={k}-"]
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert server.bytes_sent < 1.5 * len(PAYLOAD)


def test_resumes_after_read_timeout(server, dest):
    k = len(PAYLOAD) // 4
    server.stall_first_after = k
    download(server.url, dest, PAYLOAD_MD5, retries=1, backoff_s=0.001, timeout_s=0.2)
    assert server.ranges == [None, f"bytes={k}-"]
    assert dest.read_bytes() == PAYLOAD


def test_resumes_part_from_earlier_run(server, dest):
    half = len(PAYLOAD) // 2
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(PAYLOAD[:half])
    download(server.url, dest, PAYLOAD_MD5, **FAST)
    assert server.ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD
    assert server.bytes_sent == len(PAYLOAD) - half


def test_complete_part_answered_416_is_accepted(server, dest):
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(PAYLOAD)
    download(server.url, dest, PAYLOAD_MD5, **FAST)
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, dest):
    server.ignore_range = True
    half = len(PAYLOAD) // 2
    dest.parent.mkdir(parents=True)
    # Garbage, not a prefix of the payload: the result is right only if the
    # .part was truncated before the 200 body was written.
    _part(dest).write_bytes(b"x" * half)
    download(server.url, dest, PAYLOAD_MD5, **FAST)
    assert server.ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD


def test_sha256_is_checked(server, dest):
    download(server.url, dest, PAYLOAD_SHA256.upper(), **FAST)
    assert dest.read_bytes() == PAYLOAD
    dest.unlink()
    wrong = hashlib.sha256(b"not the payload").hexdigest()
    with pytest.raises(ChecksumError, match=f"SHA-256 mismatch .*expected {wrong}, got "
                                            f"{PAYLOAD_SHA256}"):
        download(server.url, dest, wrong, **FAST)
    _assert_nothing_left(dest)


def test_md5_mismatch(server, dest):
    with pytest.raises(ChecksumError) as info:
        download(server.url, dest, WRONG_MD5, checksum_key="coco_md5['train2014.zip']", **FAST)
    message = str(info.value)
    assert WRONG_MD5 in message
    assert PAYLOAD_MD5 in message
    assert "config entry coco_md5['train2014.zip'] must match" in message
    assert server.url in message
    _assert_nothing_left(dest)
    assert len(server.ranges) == 1  # a checksum error is not retried


def test_existing_dest_is_untouched_on_failure(server, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        download(server.url, dest, WRONG_MD5, **FAST)
    assert dest.read_bytes() == b"old"


def test_404_fails_at_once(server, dest):
    server.statuses = [404]
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, PAYLOAD_MD5, retries=5, **FAST)
    assert not isinstance(info.value, ChecksumError)
    assert "404" in str(info.value) and server.url in str(info.value)
    assert len(server.ranges) == 1
    _assert_nothing_left(dest)


def test_5xx_and_429_are_retried(server, dest):
    server.statuses = [503, 429]
    download(server.url, dest, PAYLOAD_MD5, retries=2, **FAST)
    assert len(server.ranges) == 3
    assert dest.read_bytes() == PAYLOAD


def test_gives_up_after_retries(server, dest):
    server.statuses = [500] * 3
    with pytest.raises(DownloadError, match="3 attempt"):
        download(server.url, dest, PAYLOAD_MD5, retries=2, **FAST)
    assert len(server.ranges) == 3
    _assert_nothing_left(dest)


def test_connection_refused_is_a_download_error(dest):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError):
        download(f"http://127.0.0.1:{port}/x.zip", dest, PAYLOAD_MD5, retries=1, **FAST)
    _assert_nothing_left(dest)


@pytest.mark.parametrize("checksum", ["TODO", PAYLOAD_MD5[:-1], PAYLOAD_SHA256 + "0",
                                      f"tar-tree-sha256:{PAYLOAD_MD5}", f"sha1:{PAYLOAD_SHA256}"])
def test_malformed_checksum_is_rejected_before_any_request(server, dest, checksum):
    with pytest.raises(ValueError, match="not an MD5 .*, SHA-256 .* or tar-tree-sha256:"):
        download(server.url, dest, checksum, **FAST)
    assert server.ranges == []


def test_progress_is_logged(server, dest, caplog):
    caplog.set_level(logging.INFO, logger="vww.data.download")
    download(server.url, dest, PAYLOAD_MD5, chunk_bytes=64 * 1024,
             progress_interval_s=0, **FAST)
    lines = [r.getMessage() for r in caplog.records if "MB/s" in r.getMessage()]
    assert len(lines) >= 2  # one for each chunk, and the final one
    assert "0.3 MB / 0.3 MB (100.0%)" in lines[-1]
    assert "ETA" in lines[-1]


# Bounds for the tests: a 0.5 s window, and a minimum rate 5x above what the trickle
# can deliver (4 B / 5 ms <= 0.8 KB/s) and 50x below the steady server (2 KB / 10 ms), so
# that neither a slow machine nor a busy one changes the outcome.
LIMITS = dict(min_rate_bytes_s=4 * 1024, rate_window_s=0.5)
TRICKLE = (4, 0.005, 20.0)  # the server gives up after 20 s; the client must stop long before
STEADY = (2048, 0.01, 20.0)  # <= 200 KB/s: the payload takes 1.5 s or more, three windows


def _assert_stopped_and_kept(dest):
    assert not dest.exists()
    assert 0 < _part(dest).stat().st_size < len(PAYLOAD)  # kept for a later run to resume


def test_trickle_is_stopped_by_the_minimum_rate(server, dest):
    server.trickle = TRICKLE
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, PAYLOAD_MD5, **LIMITS, deadline_s=None, **FAST)
    assert time.monotonic() - t0 < 10  # stopped by the client, not by the server giving up
    message = str(info.value)
    assert "\n" not in message
    assert server.url in message
    assert "below the minimum rate of 4 KiB/s" in message
    assert "download_limits.min_rate_kib_s" in message
    assert re.search(r"\b\d+\.\d KiB/s over the last \d+\.\d s", message)
    assert f"{_part(dest).stat().st_size:,} bytes kept in {_part(dest)}" in message
    _assert_stopped_and_kept(dest)
    assert len(server.ranges) == 1  # a broken bound is not retried


def test_trickle_is_stopped_by_the_deadline(server, dest):
    server.trickle = TRICKLE
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, PAYLOAD_MD5, min_rate_bytes_s=0, deadline_s=1.0, **FAST)
    assert time.monotonic() - t0 < 10
    message = str(info.value)
    assert server.url in message
    assert "the deadline is 0.000278 h (download_limits.deadline_h" in message
    assert re.search(r"not finished after \d+s", message)
    _assert_stopped_and_kept(dest)


def test_cuts_after_a_few_bytes_use_up_the_retries(server, dest):
    # Each try adds 100 bytes: not progress enough to reset the retry count, so even
    # with both bounds off the download ends.
    server.cut_all_after = 100
    with pytest.raises(DownloadError, match="4 attempt"):
        download(server.url, dest, PAYLOAD_MD5, retries=3, min_rate_bytes_s=0,
                 deadline_s=None, **FAST)
    assert len(server.ranges) == 4
    assert _part(dest).stat().st_size == 400
    assert not dest.exists()


def test_cuts_after_a_few_bytes_are_stopped_by_the_minimum_rate(server, dest):
    # With retries to spare, the rate (which counts the time spent reconnecting) ends it.
    server.cut_all_after = 100
    with pytest.raises(DownloadError, match="download_limits.min_rate_kib_s"):
        download(server.url, dest, PAYLOAD_MD5, retries=30, backoff_s=0.01,
                 timeout_s=5.0, **LIMITS)
    _assert_stopped_and_kept(dest)


def test_real_progress_resets_the_retry_count(server, dest):
    big = random.Random(1).randbytes(3 << 20)
    server.payload = big
    server.cut_all_after = 5 << 18  # 1.25 MiB a try: three tries, with one retry allowed
    download(server.url, dest, hashlib.md5(big).hexdigest(), retries=1, **FAST)
    assert len(server.ranges) == 3
    assert dest.read_bytes() == big


def test_steady_download_within_the_limits_succeeds(server, dest):
    server.trickle = STEADY
    download(server.url, dest, PAYLOAD_MD5, **LIMITS, deadline_s=30.0, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [None]


@pytest.mark.parametrize("bound", [dict(min_rate_bytes_s=-1), dict(rate_window_s=0),
                                   dict(deadline_s=0)])
def test_bad_bounds_are_rejected_before_any_request(server, dest, bound):
    with pytest.raises(ValueError):
        download(server.url, dest, PAYLOAD_MD5, **bound)
    assert server.ranges == []


def _run_cli(*args):
    env = dict(os.environ, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_cli_downloads(server, dest, tmp_path):
    log = tmp_path / "download.log"
    proc = _run_cli("--url", server.url, "--md5", PAYLOAD_MD5, "--output", str(dest),
                    "--retries", "1", "--timeout", "5", "--log", str(log))
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == PAYLOAD
    assert proc.stderr == ""  # everything went to the log file
    assert "MB/s" in log.read_text()


def test_cli_md5_mismatch(server, dest):
    proc = _run_cli("--url", server.url, "--md5", WRONG_MD5, "--output", str(dest),
                    "--config-key", "coco_md5['x.zip']", "--retries", "1", "--timeout", "5")
    assert proc.returncode == 1
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and WRONG_MD5 in error_lines[0]
    assert "coco_md5['x.zip']" in error_lines[0]
    _assert_nothing_left(dest)


def test_cli_downloads_by_sha256(server, dest):
    proc = _run_cli("--url", server.url, "--sha256", PAYLOAD_SHA256, "--output", str(dest),
                    "--retries", "1", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == PAYLOAD


def test_cli_help():
    proc = _run_cli("--help")
    assert proc.returncode == 0
    for option in ("--url", "--md5", "--sha256", "--tar-tree-sha256", "--config-key",
                   "--output", "--retries", "--timeout", "--log", "--min-rate-kib-s",
                   "--rate-window-s", "--deadline-h"):
        assert option in proc.stdout


def test_cli_trickle_is_stopped_by_the_minimum_rate(server, dest):
    server.trickle = TRICKLE
    proc = _run_cli("--url", server.url, "--md5", PAYLOAD_MD5, "--output", str(dest),
                    "--retries", "1", "--timeout", "5", "--min-rate-kib-s", "4",
                    "--rate-window-s", "0.5", "--deadline-h", "none")
    assert proc.returncode == 1
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, proc.stderr
    assert server.url in error_lines[0]
    assert "download_limits.min_rate_kib_s" in error_lines[0]
    _assert_stopped_and_kept(dest)


def _tree(root):
    """A small source tree: files in folders, an executable script and a symbolic link."""
    (root / "src" / "deep").mkdir(parents=True)
    (root / "README.md").write_text("a tree\n")
    (root / "src" / "kernel.cc").write_bytes(random.Random(1).randbytes(5000))
    (root / "src" / "deep" / "data.bin").write_bytes(bytes(range(256)))
    (root / "build.sh").write_text("#!/bin/sh\nmake\n")
    (root / "build.sh").chmod(0o755)
    (root / "link.md").symlink_to("README.md")
    return root


def _tree_digest(root):
    """The tree's digest computed from the folder itself (the definition of
    tar_tree_sha256, independently of any tarball)."""
    lines = []
    for path in root.rglob("*"):
        below = path.relative_to(root).as_posix()
        if path.is_symlink():
            lines.append(f"{below} -> {os.readlink(path)}")
        elif path.is_file():
            mode = "755" if path.stat().st_mode & 0o100 else "644"
            lines.append(f"{below} {mode} {hashlib.sha256(path.read_bytes()).hexdigest()}")
    return hashlib.sha256("".join(f"{line}\n" for line in sorted(lines)).encode()).hexdigest()


def _tarball(folder, top, output, *tar_options):
    """`folder` packed by GNU tar as the one top folder `top`, compressed as `output`'s
    suffix says."""
    subprocess.run(["tar", "-C", str(folder.parent), *tar_options,
                    f"--transform=s,^{folder.name},{top},", "-caf", str(output), folder.name],
                   check=True)
    return output


def test_a_tarballs_tree_digest_ignores_compression_folder_name_and_times(tmp_path):
    """GitHub's gzip of a tag's archive and a mirror's: other bytes, another top folder name,
    other times and owners; the same tree, so the same digest, the folder's own."""
    tree = _tree(tmp_path / "project-v1.0")
    expected = _tree_digest(tree)
    upstream = _tarball(tree, "project-1.0", tmp_path / "upstream.tar.gz")
    mirror = _tarball(tree, "project-v1.0", tmp_path / "mirror.tar.xz",
                      "--mtime=2000-01-01", "--owner=0", "--group=0", "--sort=name")
    assert upstream.read_bytes() != mirror.read_bytes()
    assert tar_tree_sha256(upstream) == tar_tree_sha256(mirror) == expected


@pytest.mark.parametrize("change", ["content", "mode", "rename", "extra"])
def test_a_tarballs_tree_digest_sees_every_change_to_the_tree(tmp_path, change):
    tree = _tree(tmp_path / "project")
    before = tar_tree_sha256(_tarball(tree, "project", tmp_path / "before.tar.gz"))
    if change == "content":
        (tree / "src" / "deep" / "data.bin").write_bytes(bytes(range(255, -1, -1)))
    elif change == "mode":
        (tree / "build.sh").chmod(0o644)
    elif change == "rename":
        (tree / "src" / "kernel.cc").rename(tree / "src" / "kernels.cc")
    else:
        (tree / "src" / "new.h").write_text("")
    after = tar_tree_sha256(_tarball(tree, "project", tmp_path / "after.tar.gz"))
    assert after == _tree_digest(tree) != before


def test_cli_checks_a_source_archive_by_its_tree(server, dest, tmp_path):
    """--tar-tree-sha256: an archive of the expected tree passes whatever its gzip bytes; one
    of another tree is refused, naming the config key, and nothing is left."""
    tree = _tree(tmp_path / "project")
    server.payload = _tarball(tree, "project-0123", tmp_path / "served.tar.gz").read_bytes()
    proc = _run_cli("--url", server.url, "--tar-tree-sha256", _tree_digest(tree),
                    "--output", str(dest), "--retries", "1", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == server.payload
    dest.unlink()
    (tree / "README.md").write_text("changed\n")
    proc = _run_cli("--url", server.url, "--tar-tree-sha256", _tree_digest(tree),
                    "--output", str(dest), "--config-key", "tflm_sources.archives.x",
                    "--retries", "1", "--timeout", "5")
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(error_lines) == 1, proc.stderr
    assert (f"SHA-256 of the tree mismatch for {server.url}: expected {_tree_digest(tree)}, got "
            f"{tar_tree_sha256(tmp_path / 'served.tar.gz')}") in error_lines[0]
    assert "tflm_sources.archives.x" in error_lines[0]
    _assert_nothing_left(dest)
