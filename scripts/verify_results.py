#!/usr/bin/env python3
"""Check a build's files against the sha256 recorded when they were written.

Checks every artifact MANIFEST.sha256 lists (the last finished build) against the sha256 its
job recorded when it wrote it (or, for a build made before those records, the manifest's),
and every TFRecord shard against its shard report (written with the shard, so shards are
checked before the first manifest exists). Snakemake itself cannot see this damage: it
compares time stamps, and a flipped byte keeps them. Prints one line per missing or damaged
file, then the command that rebuilds them with the bytes they had; exit status 1 if there
are any. `snakemake verify` runs it; `snakemake --config repair=true` rebuilds the damaged
files and what depends on them (the command printed names the run's config files and
values).

A file rebuilt since the last manifest (after a config change, before the build finished)
shows as damaged too: finish the build, then verify.

Example:
  python scripts/verify_results.py --manifest results/MANIFEST.sha256 \\
      --shards results/datasets/D/records/train.record-0000{0,1}-of-00002 \\
      --shard-reports results/datasets/D/reports/train-0000{0,1}-of-00002.json
"""

import logging
import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args, snakemake_command
from vww.base.integrity import find_damage, recorded_digests


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--manifest", help="MANIFEST.sha256 of the build (checked if it exists)")
    parser.add_argument("--shards", nargs="*", default=[], metavar="SHARD",
                        help="TFRecord shards to check against their reports")
    parser.add_argument("--shard-reports", nargs="*", default=[], metavar="REPORT",
                        help="the shards' reports (JSON), in the order of --shards")
    args = parse_logged_args(parser, argv)
    if len(args.shards) != len(args.shard_reports):
        parser.error(f"{len(args.shards)} --shards but {len(args.shard_reports)} "
                     "--shard-reports: give one report per shard")
    recorded = recorded_digests(args.manifest, args.shards, args.shard_reports)
    damaged = find_damage(recorded)
    for damage in damaged:
        line = f"damaged: {damage.path}: {damage.problem} (recorded in {damage.recorded_in})"
        print(line)
        logging.error("%s", line)
    logging.info("checked %d files: %d intact, %d missing or damaged", len(recorded),
                 len(recorded) - len(damaged), len(damaged))
    if damaged:
        sys.exit(f"error: {len(damaged)} of {len(recorded)} files missing or damaged; "
                 f"rebuild them (the same bytes): "
                 f"{snakemake_command(config={'repair': True})}")
    print(f"all {len(recorded)} files intact")


if __name__ == "__main__":
    main_guard(main, check_inputs=False)  # it names every damaged file itself
