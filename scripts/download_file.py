#!/usr/bin/env python3
r"""Download one file (a COCO 2014 zip, a source archive), resumably, and check its
MD5 or SHA-256, or the SHA-256 of the tree a source tarball holds (--tar-tree-sha256:
GitHub's archive and a mirror's of the same tree pass alike, whatever their gzip bytes).

Bytes go to OUTPUT.part. If that file exists from an interrupted run, the
download resumes from where it stopped (HTTP Range). Dropped connections,
timeouts, HTTP 5xx and 429 are retried with exponential backoff. OUTPUT
appears only after the checksum matched, so an incomplete or corrupt file never
looks like a finished one. On a checksum mismatch the .part is deleted.

The download is bounded: it stops (keeping the .part, so a later run resumes)
once the rate averaged over --rate-window-s falls below --min-rate-kib-s, or
once --deadline-h hours have passed, retries included. Retries alone would
not bound it: a server that trickles bytes never times out.

Example (MD5 is the value of coco_md5['val2014.zip'] in the config):

  python scripts/download_file.py \
      --url http://images.cocodataset.org/zips/val2014.zip \
      --md5 "$MD5" --config-key "coco_md5['val2014.zip']" \
      --output data/raw/val2014.zip

Exit status: 0 on success, 1 if the download failed or the checksum did not
match (one line "error: ..." on stderr), 2 on bad arguments.
"""

import argparse
import re
import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.data.download import TAR_TREE, DownloadError, download


def _hex_arg(digits, name):
    """argparse type: a hex digest of `digits` digits, checked before anything is fetched."""
    def check(value):
        if not re.fullmatch(rf"[0-9a-fA-F]{{{digits}}}", value):
            raise argparse.ArgumentTypeError(
                f"not {name} hex digest ({digits} hex digits): {value!r}")
        return value
    return check


def _hours_arg(value):
    """argparse type: hours, with "none" or "null" (as config null renders) = 0 = none."""
    if value.lower() in ("none", "null"):
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {value!r}") from None


def parse_args(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--url", required=True,
                        help="HTTP(S) URL of the archive to download.")
    checksum = parser.add_mutually_exclusive_group(required=True)
    checksum.add_argument("--md5", type=_hex_arg(32, "an MD5"),
                          help="Expected MD5 of the whole file, in hex (any case).")
    checksum.add_argument("--sha256", type=_hex_arg(64, "a SHA-256"),
                          help="Expected SHA-256 of the whole file, in hex (any case).")
    checksum.add_argument("--tar-tree-sha256", type=_hex_arg(64, "a SHA-256"),
                          help="Expected SHA-256 of the tree a tarball of one top folder "
                               "holds: of its files' paths below that folder, modes and "
                               "contents (vww.data.download.tar_tree_sha256).")
    parser.add_argument("--config-key",
                        help="The config entry the checksum comes from, named in the "
                             "error on a mismatch (e.g. \"coco_md5['val2014.zip']\").")
    parser.add_argument("--output", required=True,
                        help="Where to write the file. OUTPUT.part holds the bytes "
                             "while downloading; missing directories are created.")
    parser.add_argument("--retries", type=int, default=5,
                        help="Retries in a row on transient errors (default: "
                             "%(default)s). The wait doubles each time, starting at "
                             "2 s. A try that added at least 1 MiB resets the count.")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="Seconds to wait for each connect or read before "
                             "treating the connection as dead (default: %(default)s).")
    parser.add_argument("--min-rate-kib-s", type=float, default=256.0, metavar="KIB_S",
                        help="Stop if fewer KiB/s than this arrive, averaged over each "
                             "--rate-window-s of wall time (retries and reconnects "
                             "included); 0 turns it off (default: %(default)g; config "
                             "download_limits.min_rate_kib_s).")
    parser.add_argument("--rate-window-s", type=float, default=300.0, metavar="SECONDS",
                        help="Length of the window the rate is averaged over, so that "
                             "a brief stall does not stop a good transfer (default: "
                             "%(default)g; config download_limits.rate_window_s).")
    parser.add_argument("--deadline-h", type=_hours_arg, default=24.0, metavar="HOURS",
                        help="Stop if the download has not finished after this many "
                             "hours, retries included; 0 or none = no deadline (default: "
                             "%(default)g; config download_limits.deadline_h).")
    args = parse_logged_args(parser, argv)
    if args.retries < 0:
        parser.error("--retries must be >= 0")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.min_rate_kib_s < 0:
        parser.error("--min-rate-kib-s must be >= 0")
    if args.rate_window_s <= 0:
        parser.error("--rate-window-s must be > 0")
    if args.deadline_h < 0:
        parser.error("--deadline-h must be >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        checksum = (f"{TAR_TREE}:{args.tar_tree_sha256}" if args.tar_tree_sha256
                    else args.md5 or args.sha256)
        download(args.url, args.output, checksum,
                 checksum_key=args.config_key,
                 retries=args.retries, timeout_s=args.timeout,
                 min_rate_bytes_s=args.min_rate_kib_s * 1024,
                 rate_window_s=args.rate_window_s,
                 deadline_s=args.deadline_h * 3600 or None)
    except (DownloadError, OSError) as exc:  # OSError: e.g. disk full, no permission
        sys.exit(f"error: {exc}")  # main_guard keeps it in the log file too


if __name__ == "__main__":
    main_guard(main)
