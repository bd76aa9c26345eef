#!/usr/bin/env python3
"""Write the sha256 of build artifacts in `sha256sum` format, sorted by path.

Each file's sha256 is the one its job recorded when it wrote it (vww.base.files), and the
file must still have those bytes: a file damaged or changed by hand since is refused, named
with the command that rebuilds it, and no manifest is written, so the manifest never vouches
for damage. A file without a record (written outside a workflow run) is listed as it is.

Two builds with the same config and inputs give the same manifest; diff two manifests to
see what changed, or check a build against one with `sha256sum -c MANIFEST.sha256`.

Example:
  python scripts/write_manifest.py --output results/MANIFEST.sha256 results/*/model.tflite
"""


import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import recorded, sha256_file, write_text
from vww.base.integrity import check_recorded


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--output", required=True, help="manifest to write")
    parser.add_argument("files", nargs="+", help="artifacts to list")
    args = parser.parse_args(argv)
    lines = []
    for path in sorted(set(args.files)):
        check_recorded(path)
        lines.append(f"{recorded(path) or sha256_file(path)}  {path}\n")
    write_text(args.output, "".join(lines))


if __name__ == "__main__":
    main_guard(main)
