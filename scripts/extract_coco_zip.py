#!/usr/bin/env python3
"""Extract parts of a COCO zip into the COCO 2014 layout, atomically.

Each --member is a file (annotations/instances_train2014.json) or a folder ending in "/"
(train2014/). They are extracted into a temporary folder inside --into and moved to their
final place only once everything is out, so an interrupted extraction never leaves a
half-filled folder at the path the workflow checks.

Example:
  python scripts/extract_coco_zip.py data/coco_zips/val2014.zip --into data/coco \\
      --member val2014/
"""

import logging
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard, parse_logged_args


def _selected(names, wanted):
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"unsafe member name {name!r}")
        if not name.endswith("/") and any(
            name == w or (w.endswith("/") and name.startswith(w)) for w in wanted
        ):
            yield name


def extract(zip_path, into, members):
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        missing = [m for m in members
                   if not any(n == m or (m.endswith("/") and n.startswith(m)) for n in names)]
        if missing:
            raise ValueError(f"{zip_path} has no member {', '.join(missing)}")
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=into))
        try:
            selected = list(_selected(names, members))
            for count, name in enumerate(selected, 1):
                archive.extract(name, staging)
                if count % 10000 == 0:
                    logging.info("%s: %d/%d files", zip_path, count, len(selected))
            for member in members:
                final = into / member.rstrip("/")
                if final.is_dir():
                    shutil.rmtree(final)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / member.rstrip("/"), final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logging.info("%s: extracted %d files into %s", zip_path, len(selected), into)


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("zip", help="COCO zip file")
    parser.add_argument("--into", required=True, help="COCO root (coco_dir)")
    parser.add_argument("--member", action="append", required=True,
                        help="file or folder/ to extract (repeatable)")
    args = parse_logged_args(parser, argv)
    try:
        extract(args.zip, args.into, args.member)
    except (ValueError, zipfile.BadZipFile) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main_guard(main)
