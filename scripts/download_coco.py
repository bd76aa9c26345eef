#!/usr/bin/env python3
r"""Download one COCO 2014 archive, resumably, and check its MD5.

Bytes go to OUTPUT.part. If that file exists from an interrupted run, the
download resumes from where it stopped (HTTP Range). Dropped connections,
timeouts, HTTP 5xx and 429 are retried with exponential backoff. OUTPUT
appears only after the MD5 matched, so an incomplete or corrupt file never
looks like a finished one. On an MD5 mismatch the .part is deleted.

Example (MD5 is the value of coco_md5['val2014.zip'] in the config):

  python scripts/download_coco.py \
      --url http://images.cocodataset.org/zips/val2014.zip \
      --md5 "$MD5" \
      --output data/raw/val2014.zip

Exit status: 0 on success, 1 if the download failed or the MD5 did not
match (one line "error: ..." on stderr), 2 on bad arguments.
"""

import argparse
import logging
import re
import sys

from vww.download import DownloadError, download


def _md5_arg(value):
    """argparse type: a 32-digit hex MD5, checked before anything is fetched."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", value):
        raise argparse.ArgumentTypeError(f"not an MD5 hex digest (32 hex digits): {value!r}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True,
                        help="HTTP(S) URL of the archive to download.")
    parser.add_argument("--md5", required=True, type=_md5_arg,
                        help="Expected MD5 of the whole file, in hex (any case); "
                             "the workflow takes it from the coco_md5 config entry.")
    parser.add_argument("--output", required=True,
                        help="Where to write the file. OUTPUT.part holds the bytes "
                             "while downloading; missing directories are created.")
    parser.add_argument("--retries", type=int, default=5,
                        help="Retries after the first attempt on transient errors "
                             "(default: %(default)s). The wait doubles each time, "
                             "starting at 2 s.")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="Seconds to wait for each connect or read before "
                             "treating the connection as dead (default: %(default)s).")
    parser.add_argument("--log", metavar="FILE",
                        help="Append log lines (progress, retries) to FILE "
                             "instead of stderr.")
    args = parser.parse_args(argv)
    if args.retries < 0:
        parser.error("--retries must be >= 0")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        download(args.url, args.output, args.md5,
                 retries=args.retries, timeout_s=args.timeout)
    except (DownloadError, OSError) as exc:  # OSError: e.g. disk full, no permission
        if args.log:  # also keep the reason in the log file
            logging.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
