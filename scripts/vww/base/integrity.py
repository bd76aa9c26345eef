"""Finding built files that are missing or whose bytes changed since they were written.

Every job of a workflow run records the sha256 of each file it writes under results_dir, as
it writes it (vww.base.files, and vww.train.checkpoints for TensorFlow's checkpoints), in a
record of its own beneath results_dir/.sha256/ (sha256sum's format). Those records are what
a file is checked against: by every CLI before it reads its inputs, by the manifest, which is
assembled from them and refuses a file that is not its record, and by `snakemake verify` and
repair. So damage is never recorded as good: a file whose bytes changed since its job wrote
it (a flipped byte, a file cut short by a full disk, an edit by hand) is named until it is
rebuilt, whatever runs in between. Snakemake sees none of this: it compares time stamps, and
a flipped byte keeps them. Builds made before the records existed are checked against their
MANIFEST.sha256 and the shards' reports.
"""

import glob
import json
from pathlib import Path
from typing import NamedTuple

from vww.base.cli import InputError, snakemake_command
from vww.base.files import record_path, recorded, sha256_file

MISSING = "missing"


class DamagedInputError(InputError):
    """A file's bytes are not the ones the job that wrote it recorded."""


def repair_remedy():
    """What to do about a damaged file: the command that rebuilds it with the same bytes,
    with the config of the workflow run this process is a job of."""
    return f"rebuild it (the same bytes): {snakemake_command(config={'repair': True})}"


def check_recorded(path):
    """Raise DamagedInputError naming `path` if its bytes are not its record's (nothing to
    check without one)."""
    digest = recorded(path)
    if digest is not None and sha256_file(path) != digest:
        raise DamagedInputError(path, "its bytes are not the ones the job that wrote it "
                                      f"recorded in {record_path(path)} (damaged since, or "
                                      f"changed by hand): {repair_remedy()}")


def check_arguments(arguments):
    """check_recorded for every existing file a command line names (a name that is no file
    or folder, as a checkpoint prefix, names its .index and .data files): a CLI's inputs,
    before it reads them. The job's own outputs do not exist yet (Snakemake removes them
    first)."""
    for argument in arguments:
        if not argument or argument.startswith("-"):
            continue
        named = Path(argument)
        paths = ([named] if named.exists()
                 else named.parent.glob(f"{glob.escape(named.name)}.*"))
        for path in paths:
            if path.is_file():
                check_recorded(path)


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


def recorded_digests(manifest=None, shards=(), reports=(), results_dir=None):
    """{path: (sha256, where it is recorded)} of every file listed in `manifest` (if it
    exists), by the record its job wrote (record_path under `results_dir`) or else the
    manifest's, and of the shard files `shards`, from their reports `reports` (same order; a
    report that does not exist, or that an older version wrote without the shard's sha256,
    gives nothing to check against)."""
    digests = {}
    for shard, report in zip(shards, reports, strict=True):
        if Path(report).is_file():
            written = json.loads(Path(report).read_text(encoding="utf-8"))
            if written.get("output", Path(shard).name) != Path(shard).name:
                raise InputError(report, f"the report of {written['output']}, not of {shard}")
            if "sha256" in written:
                digests[str(shard)] = (written["sha256"], str(report))
    if manifest and Path(manifest).is_file():
        for path, digest in manifest_entries(manifest).items():
            written = recorded(path, results_dir)
            digests[path] = ((written, str(record_path(path, results_dir))) if written
                             else (digest, str(manifest)))
    return digests


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
