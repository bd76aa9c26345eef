#!/usr/bin/env python3
"""Write the sha256 of build artifacts in `sha256sum` format, sorted by path.

Two builds with the same config and inputs give the same manifest; diff two manifests to
see what changed, or check a build against one with `sha256sum -c MANIFEST.sha256`.

Example:
  python scripts/write_manifest.py --output results/MANIFEST.sha256 results/*/model.tflite
"""


import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import sha256_file, write_text


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--output", required=True, help="manifest to write")
    parser.add_argument("files", nargs="+", help="artifacts to list")
    args = parser.parse_args(argv)
    write_text(args.output,
               "".join(f"{sha256_file(path)}  {path}\n" for path in sorted(set(args.files))))


if __name__ == "__main__":
    main_guard(main)
