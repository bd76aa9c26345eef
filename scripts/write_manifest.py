#!/usr/bin/env python3
"""Write the sha256 of build artifacts in `sha256sum` format, sorted by path.

Two builds with the same config and inputs give the same manifest; diff two manifests to
see what changed, or check a build against one with `sha256sum -c MANIFEST.sha256`.

Example:
  python scripts/write_manifest.py --output results/MANIFEST.sha256 results/*/model.tflite
"""

import argparse
import hashlib

from vww.cli import main_guard
from vww.files import write_text


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", required=True, help="manifest to write")
    parser.add_argument("files", nargs="+", help="artifacts to list")
    args = parser.parse_args(argv)
    write_text(args.output, "".join(f"{sha256(path)}  {path}\n" for path in sorted(set(args.files))))


if __name__ == "__main__":
    main_guard(main)
