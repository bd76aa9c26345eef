"""Finding built files that are missing or whose bytes changed since they were written.

A finished build lists the sha256 of every artifact in its MANIFEST.sha256; each TFRecord
shard's report holds the shard's sha256 from the moment it was written, so a shard is
checked before the manifest exists too. Snakemake sees neither damage: it compares time
stamps, and a flipped byte or a file cut short by a full disk keeps them.
"""

import json
from pathlib import Path
from typing import NamedTuple

from vww.base.cli import InputError
from vww.base.files import sha256_file

MISSING = "missing"


class Damage(NamedTuple):
    path: str
    problem: str
    recorded_in: str


def manifest_entries(manifest):
    """{path: sha256} of a `sha256sum`-format manifest (paths as written, relative to the
    folder the build ran in)."""
    entries = {}
    for line in Path(manifest).read_text(encoding="utf-8").splitlines():
        digest, path = line.split("  ", 1)
        entries[path] = digest
    return entries


def recorded_digests(manifest=None, shards=(), reports=()):
    """{path: (sha256, where it is recorded)} of every file listed in `manifest` (if it
    exists) and of the shard files `shards`, from their reports `reports` (same order; a
    report that does not exist, or that an older version wrote without the shard's sha256,
    gives nothing to check against)."""
    recorded = {}
    for shard, report in zip(shards, reports, strict=True):
        if Path(report).is_file():
            written = json.loads(Path(report).read_text(encoding="utf-8"))
            if written.get("output", Path(shard).name) != Path(shard).name:
                raise InputError(report, f"the report of {written['output']}, not of {shard}")
            if "sha256" in written:
                recorded[str(shard)] = (written["sha256"], str(report))
    if manifest and Path(manifest).is_file():
        recorded.update({path: (digest, str(manifest))
                         for path, digest in manifest_entries(manifest).items()})
    return recorded


def _problem(path, digest):
    """Why the file at `path` is not the one with sha256 `digest`, or None if it is."""
    path = Path(path)
    if not path.is_file():
        return MISSING
    if sha256_file(path) != digest:
        return f"sha256 differs from the recorded one ({path.stat().st_size:,} bytes now)"
    return None


def find_damage(recorded):
    """[Damage] of the files of `recorded` (recorded_digests) whose bytes are not the
    recorded ones, sorted by path."""
    found = []
    for path, (digest, source) in sorted(recorded.items()):
        problem = _problem(path, digest)
        if problem:
            found.append(Damage(path, problem, source))
    return found
