"""Writing outputs so that an interrupted job never leaves a complete-looking file, and
recording the sha256 of each as it is written (vww.base.integrity checks files against it).
"""

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

# The results_dir of the workflow run a job belongs to, exported to every job (the
# Snakefile): what a job writes there is recorded. A CLI run by hand records nothing.
RESULTS_ENV = "VWW_RESULTS_DIR"
RECORDS_FOLDER = ".sha256"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only on success, and record
    its sha256 (record)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
    try:
        yield Path(tmp)
        digest = sha256_file(tmp) if record_path(path) else None
        os.replace(tmp, path)
        if digest:
            record(path, digest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    """Deterministic JSON (sorted keys, fixed layout), written atomically. A NaN or an
    infinity (invalid JSON, which strict readers refuse) raises ValueError instead."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n",
                       encoding="utf-8")


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path, chunk_bytes=1 << 20):
    """Hex sha256 of a file, read in chunks (record shards and checkpoints can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(path, results_dir=None):
    """Where the sha256 of `path` written by a job is kept: results_dir/.sha256/<the file's
    path under results_dir>.sha256; None for a file outside results_dir, or outside a
    workflow run (no results_dir given or exported)."""
    root = results_dir or os.environ.get(RESULTS_ENV)
    if not root:
        return None
    root, path = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    records = root / RECORDS_FOLDER
    if not path.is_relative_to(root) or path.is_relative_to(records):
        return None
    return records / f"{path.relative_to(root)}.sha256"


def record(path, digest):
    """Keep `digest` as the sha256 of `path` as its job wrote it (when a job of a workflow
    run writes it under results_dir: record_path), replacing the record atomically."""
    where = record_path(path)
    if where is None:
        return
    where.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{where.name}.", dir=where.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"{digest}  {Path(path).name}\n")
    os.replace(tmp, where)


def recorded(path, results_dir=None):
    """The sha256 recorded when `path` was written, or None without a record."""
    where = record_path(path, results_dir)
    if where is None or not where.is_file():
        return None
    return where.read_text(encoding="utf-8").split()[0]
