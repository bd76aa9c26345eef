"""Resumable HTTP downloads that check the MD5 or SHA-256 before making the file visible
(or, for a source archive, the SHA-256 of the tree it holds: tar_tree_sha256).

COCO's archives are large (train2014.zip is about 13 GB). A download has to
survive dropped connections and interrupted runs without starting over. It
must also never leave a truncated or corrupt file where Snakemake would take
it for a finished output. So:

* bytes go to ``dest + ".part"``. ``dest`` appears only through an atomic
  rename, after the checksum matched;
* an existing ``.part`` is resumed with an HTTP ``Range`` request;
* transient failures (connection errors, timeouts, short reads, HTTP 5xx
  and 429) are retried with exponential backoff, resuming each time;
* the whole call is bounded: it stops once the transfer rate, averaged over
  a window, falls below a minimum, or once an overall deadline has passed.
  Retries alone do not bound it: a server that trickles bytes, or drops
  every connection after a few of them, never times out.

Only the standard library is used, so the download step needs no extra
packages.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["TAR_TREE", "ChecksumError", "DownloadError", "download", "tar_tree_sha256"]

_LOG = logging.getLogger(__name__)

# Errors a socket read or an HTTP exchange can raise when the network fails.
# URLError (refused, DNS), TimeoutError and ConnectionResetError are all OSErrors.
# IncompleteRead and RemoteDisconnected come from http.client.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)

# A try that added at least this many bytes resets the retry count. A few bytes
# must not: a server that drops every connection after a handful of them would
# otherwise be retried until the file is done, 13 GB later.
_PROGRESS_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The file could not be downloaded (after any retries)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected checksum."""


class _Transient(Exception):
    """A failure worth retrying. The message says what happened."""


def download(
    url: str,
    dest: str | os.PathLike,
    checksum: str,
    *,
    checksum_key: str | None = None,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
    progress_interval_s: float = 10.0,
    min_rate_bytes_s: float = 256 * 1024,
    rate_window_s: float = 300.0,
    deadline_s: float | None = 24 * 3600.0,
    log: logging.Logger | None = None,
) -> None:
    """Download ``url`` to ``dest`` and check that the file has ``checksum``: an MD5 (32 hex
    digits) or a SHA-256 (64), any case, or ``tar-tree-sha256:`` and the tar_tree_sha256 of
    the (compressed) tarball. ``checksum_key`` names the config entry it came
    from, for the error message.

    Bytes go to ``dest.part``. A ``.part`` left by an earlier run is resumed.
    Transient failures are retried up to ``retries`` times in a row without
    progress. A try counts as progress, and resets the count, only if it
    added at least 1 MiB: a try that added a few bytes is a failure like any
    other. Before retry ``i`` (counting from 0) the function sleeps
    ``backoff_s * 2**i`` seconds. ``timeout_s`` applies to each connect and
    each read, not to the whole download. If ``dest`` already exists it is
    left alone until the new file replaces it.

    Two bounds stop a download that moves but too slowly to be worth it:

    * ``min_rate_bytes_s``: the bytes received in each ``rate_window_s`` of
      wall time, from the start of the call, divided by that time, must reach
      this rate. The time includes reconnects and backoff sleeps, so a server
      that cuts every connection after a few bytes is caught as well as one
      that trickles them. A window, not a single read, so that a brief stall
      or a round of retries does not end a good transfer. 0 turns it off.
    * ``deadline_s``: the whole call, retries included, must finish the
      transfer within this many seconds (None: no deadline). A later call
      resumes the ``.part`` with a new deadline.

    Both are checked after every read and before every try, so a blocked
    connect or read can overrun them by up to ``timeout_s``. The defaults
    (256 KiB/s over 5 min, 24 h) fit COCO's 13 GB train2014.zip: at the
    minimum rate it takes about 14 h, inside the deadline. The checksum
    after the transfer is not counted.

    Raises ChecksumError if the checksum differs (the ``.part`` is deleted), and
    DownloadError for HTTP 4xx (other than 416/429), once the retries are
    used up, or when a bound is broken (the ``.part`` is kept, so a later run
    can resume it). Either way nothing is written to ``dest``. A malformed
    ``checksum``, a negative rate or a window or deadline <= 0 raises ValueError
    before any request is made.
    """
    # Check this first: a typo in the config should not cost a 13 GB download.
    algorithm = checksum_algorithm(checksum)
    if min_rate_bytes_s < 0:
        raise ValueError(f"min_rate_bytes_s must be >= 0, not {min_rate_bytes_s!r}")
    if rate_window_s <= 0:
        raise ValueError(f"rate_window_s must be > 0, not {rate_window_s!r}")
    if deadline_s is not None and deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0 or None, not {deadline_s!r}")
    log = log or _LOG
    dest = os.fspath(dest)
    part = dest + ".part"
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    progress = _Progress(os.path.basename(dest), progress_interval_s, log)
    limits = _Limits(url, part, min_rate_bytes_s, rate_window_s, deadline_s)

    attempt = 0
    while True:
        limits.check()
        size_before = _size(part)
        try:
            _fetch(url, part, timeout_s, chunk_bytes, progress, limits, log)
            break
        except _Transient as exc:
            # A try that moved the file forward resets the count: a 13 GB transfer over
            # a flaky link may need many resumes, but each one must make real progress.
            if _size(part) - size_before >= _PROGRESS_BYTES:
                attempt = 0
            if attempt == retries:
                raise DownloadError(
                    f"download of {url} failed after {attempt + 1} attempt(s): {exc}"
                ) from exc
            # Never sleep past the deadline: the check before the next try stops there.
            delay = min(backoff_s * 2**attempt, limits.remaining_s())
            log.warning("%s: %s; retry %d of %d in %.3g s",
                        url, exc, attempt + 1, retries, delay)
            time.sleep(delay)
            attempt += 1
    progress.report()  # the final line, whatever the interval
    _verify_and_commit(url, part, dest, (algorithm, checksum.rpartition(":")[2].lower()), checksum_key, log)


def _fetch(url, part, timeout_s, chunk_bytes, progress, limits, log):
    """Make one request and write its body to ``part``, resuming if possible.

    Returns once the server has sent the whole body. Raises _Transient for
    failures worth retrying and DownloadError for the others, including a
    broken bound (``limits``, checked after every read).
    """
    have = _size(part)
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            _on_range_not_satisfiable(exc, url, part, have, progress, log)
            return
        if exc.code == 429 or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        # Other errors (404, 403, ...) will not go away if we retry.
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except _NETWORK_ERRORS as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    # Open .part only now, after the server accepted the request. Then a 404
    # leaves no empty .part behind.
    with resp:
        start = (_content_range_start(resp.headers.get("Content-Range"))
                 if resp.status == 206 else 0)
        if start not in (have, 0):
            # The body starts at neither offset we could use. Start again from 0.
            os.remove(part)
            raise _Transient(f"server sent bytes from {start}, not from {have}")
        if have and start == 0:
            log.info("%s: server ignored the Range request; restarting from zero", url)
        length = resp.headers.get("Content-Length", "")
        expected = int(length) if length.isdigit() else None
        progress.start(start, start + expected if expected is not None else None)
        received = 0
        # "wb" truncates: when restarting from zero, the old bytes must go.
        with open(part, "ab" if start else "wb") as out:
            while True:
                try:
                    # read1 returns what has arrived (up to chunk_bytes). read()
                    # would wait for a full chunk, and a timeout during that
                    # wait would lose the bytes it had already received.
                    chunk = resp.read1(chunk_bytes)
                except _NETWORK_ERRORS as exc:
                    raise _Transient(
                        f"connection lost after {start + received} bytes: "
                        f"{type(exc).__name__}: {exc}") from exc
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                progress.update(start + received, len(chunk))
                limits.update(len(chunk), start + received)
    # http.client returns b"" rather than raising when the peer closes early,
    # so we compare with Content-Length to catch a short body.
    if expected is not None and received < expected:
        raise _Transient(f"connection closed after {start + received} "
                         f"of {start + expected} bytes")


def _size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def _on_range_not_satisfiable(exc, url, part, have, progress, log):
    """Handle a 416 reply: we asked for bytes from ``have`` and there are none.

    Usually this means the ``.part`` already holds the whole file (for
    example, a run was stopped before the rename). The checksum decides. If
    the server says the file is shorter than the ``.part``, delete the
    ``.part`` and retry from zero.
    """
    total = _content_range_total(exc.headers.get("Content-Range"))
    if total is not None and total != have:
        os.remove(part)
        raise _Transient(f"HTTP 416: {part} has {have} bytes but the file has {total}")
    log.info("%s: %s is already complete (%d bytes)", url, part, have)
    progress.start(have, have)


def _content_range_start(value):
    """Return the first byte offset in ``bytes START-END/TOTAL``, or None."""
    m = re.match(r"\s*bytes\s+(\d+)-", value or "")
    return int(m.group(1)) if m else None


def _content_range_total(value):
    """Return TOTAL from ``bytes .../TOTAL``, or None if it is missing or ``*``."""
    m = re.search(r"/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


def _verify_and_commit(url, part, dest, expected, checksum_key, log):
    """Check the (algorithm, hex digest) ``expected`` of ``part``, then rename it to ``dest``
    (atomically)."""
    algorithm, checksum = expected
    label = _ALGORITHM_LABELS[algorithm]
    log.info("%s: checking %s", os.path.basename(dest), label)
    if algorithm == TAR_TREE:
        try:
            actual = tar_tree_sha256(part)
        except (tarfile.TarError, ValueError, EOFError, OSError) as exc:
            actual = f"no tarball of one folder ({exc})"
    else:
        digest = hashlib.new(algorithm)
        with open(part, "rb") as f:
            # Read in blocks: the archives are far larger than memory.
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        actual = digest.hexdigest()
    if actual != checksum:
        # Resuming a corrupt file would never help, so delete it. The next
        # run starts from zero.
        os.remove(part)
        where = (f" If the file itself is right, the config entry {checksum_key} must match."
                 if checksum_key else "")
        raise ChecksumError(
            f"{label} mismatch for {url}: expected {checksum}, got {actual}. The "
            f"download was deleted.{where}")
    os.replace(part, dest)
    log.info("%s: %s OK, saved to %s", os.path.basename(dest), label, dest)


TAR_TREE = "tar-tree-sha256"
_ALGORITHM_LABELS = {"md5": "MD5", "sha256": "SHA-256", TAR_TREE: "SHA-256 of the tree"}
_HEX_DIGITS = {32: "md5", 64: "sha256"}


def checksum_algorithm(checksum):
    """hashlib's name for a hex digest by its length: md5 (32 digits) or sha256 (64); or
    TAR_TREE for "tar-tree-sha256:" and 64 hex digits."""
    if isinstance(checksum, str):
        kind, _, digits = checksum.rpartition(":")
        if kind == TAR_TREE and re.fullmatch(r"[0-9a-fA-F]{64}", digits):
            return TAR_TREE
        if not kind and re.fullmatch(r"[0-9a-fA-F]+", digits) and len(digits) in _HEX_DIGITS:
            return _HEX_DIGITS[len(digits)]
    raise ValueError(
        f"not an MD5 (32 hex digits), SHA-256 (64 hex digits) or {TAR_TREE}:<64 hex digits> "
        f"checksum: {checksum!r}")


def tar_tree_sha256(path):
    """The SHA-256 of the tree a tarball of one top folder holds: of one line per file or
    symbolic link below that folder, sorted by path ("<path> <mode> <sha256 of content>" or
    "<path> -> <target>", mode 755 or 644 as git keeps it). It ignores the compression and
    its bytes (GitHub's gzip of `git archive` is not stable), the top folder's name (a tag's
    archive drops the tag's "v" from it) and the tar headers' times and owners; it sees a
    changed, added, removed or renamed file, and a changed executable bit."""
    lines, tops = [], set()
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            top, _, below = member.name.strip("/").partition("/")
            tops.add(top)
            if member.isdir():
                continue
            if member.issym():
                lines.append(f"{below} -> {member.linkname}")
            elif member.isfile():
                digest = hashlib.sha256()
                with tar.extractfile(member) as content:
                    for block in iter(lambda: content.read(1 << 20), b""):
                        digest.update(block)
                mode = "755" if member.mode & 0o100 else "644"
                lines.append(f"{below} {mode} {digest.hexdigest()}")
            else:
                raise ValueError(f"{member.name}: neither a file, a folder nor a symbolic link")
    if len(tops) != 1:
        raise ValueError(f"not one top folder but {len(tops)}")
    return hashlib.sha256("".join(f"{line}\n" for line in sorted(lines)).encode()).hexdigest()


class _Limits:
    """The minimum transfer rate and the deadline of one download() call.

    The rate is measured over consecutive windows of wall time: a window
    closes at the first check at least ``window_s`` after it opened, and its
    bytes divided by its length must reach ``min_rate`` (bytes/s).
    """

    def __init__(self, url, part, min_rate, window_s, deadline_s):
        self.url, self.part = url, part
        self.min_rate, self.window_s, self.deadline_s = min_rate, window_s, deadline_s
        self.t0 = self.window_t0 = time.monotonic()
        self.received = 0      # bytes received in this call
        self.window_bytes = 0  # ... in the current window

    def remaining_s(self):
        """Seconds left before the deadline (infinite without one)."""
        if self.deadline_s is None:
            return float("inf")
        return max(0.0, self.t0 + self.deadline_s - time.monotonic())

    def update(self, new_bytes, done):
        """Record ``new_bytes`` received, ``done`` in all, then check the bounds."""
        self.received += new_bytes
        self.window_bytes += new_bytes
        self.check(done)

    def check(self, done=None):
        """Raise DownloadError if a bound is broken.

        ``done``: the bytes in ``.part`` so far, for the message; by default its
        size on disk (not yet right while it is open for writing).
        """
        now = time.monotonic()
        elapsed = now - self.t0
        if self.deadline_s is not None and elapsed >= self.deadline_s:
            self._stop(
                f"not finished after {_duration(elapsed)}, the deadline is "
                f"{self.deadline_s / 3600:.3g} h (download_limits.deadline_h, "
                f"null = none); this run received {self.received:,} bytes, "
                f"{_kib(self.received / max(elapsed, 1e-6))} KiB/s", done)
        window = now - self.window_t0
        if self.min_rate and window >= self.window_s:
            rate = self.window_bytes / window
            if rate < self.min_rate:
                self._stop(
                    f"{_kib(rate)} KiB/s over the last {window:.1f} s, below the "
                    f"minimum rate of {self.min_rate / 1024:g} KiB/s "
                    f"(download_limits.min_rate_kib_s, 0 = off)", done)
            self.window_t0, self.window_bytes = now, 0

    def _stop(self, why, done):
        done = _size(self.part) if done is None else done
        raise DownloadError(
            f"download of {self.url} stopped: {why}; {done:,} bytes kept in "
            f"{self.part}, a later run resumes it")


class _Progress:
    """Log progress lines (done/total, rate, ETA), at most one per interval."""

    def __init__(self, name, interval_s, log):
        self.name, self.interval_s, self.log = name, interval_s, log
        self.t0 = self.last = time.monotonic()
        self.done, self.total = 0, None
        self.transferred = 0  # bytes received in this call (for the rate)

    def start(self, done, total):
        """Record where a new response starts and the file's total size."""
        self.done, self.total = done, total

    def update(self, done, new_bytes):
        """Record ``new_bytes`` received, with ``done`` bytes now in .part."""
        self.done = done
        self.transferred += new_bytes
        if time.monotonic() - self.last >= self.interval_s:
            self.report()

    def report(self):
        """Log one progress line now."""
        self.last = now = time.monotonic()
        rate = self.transferred / max(now - self.t0, 1e-6)
        if self.total:
            share = f"{_human(self.total)} ({100 * self.done / self.total:.1f}%)"
        else:
            share = "?"
        if self.total is not None and self.done >= self.total:
            eta = "0s"
        elif self.total is not None and rate > 0:
            eta = _duration((self.total - self.done) / rate)
        else:
            eta = "?"
        self.log.info("%s: %s / %s, %.1f MB/s, ETA %s",
                      self.name, _human(self.done), share, rate / 1e6, eta)


def _kib(rate):
    """Format a rate in bytes/s as KiB/s, with a digit after the point."""
    return f"{rate / 1024:.1f}"


def _human(n):
    """Format a byte count as decimal MB or GB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _duration(seconds):
    """Format seconds as e.g. ``1h02m03s``, ``4m05s`` or ``6s``."""
    s = int(round(seconds))
    h, m = s // 3600, s // 60 % 60
    if h:
        return f"{h}h{m:02d}m{s % 60:02d}s"
    return f"{m}m{s % 60:02d}s" if m else f"{s}s"
