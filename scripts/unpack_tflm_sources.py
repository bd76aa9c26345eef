#!/usr/bin/env python3
"""Unpack TFLM and the third-party sources its build pins into one TFLM source tree.

Each archive (a `git archive` tarball, checked by download_file.py) goes where
tflite-micro's own build would download it, under
tensorflow/lite/micro/tools/make/downloads/, with TFLM's patches for flatbuffers and kissfft
applied as its download scripts apply them: the tree TFLM's Makefile builds, offline. The
tree appears at --output only when complete.

Example:
  python scripts/unpack_tflm_sources.py \\
      --archive tflite-micro=tflite-micro-90b983c2.tar.gz \\
      --archive flatbuffers=flatbuffers-v25.9.23.tar.gz ... --output results/mcu/tflm
"""

import logging
import shutil
import subprocess
import tarfile
from pathlib import Path

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.mcu.sources import PLACES, unpack_tree


def archive_arg(text):
    name, sep, path = text.partition("=")
    if not sep or name not in PLACES:
        raise ValueError(text)
    return name, Path(path)


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--archive", action="append", type=archive_arg, required=True,
                        metavar="NAME=FILE",
                        help=f"an archive and its name, one of: {', '.join(sorted(PLACES))}")
    parser.add_argument("--output", required=True, help="the TFLM tree to make (a folder)")
    args = parse_logged_args(parser, argv)
    archives = dict(args.archive)
    if "tflite-micro" not in archives:
        parser.error("--archive tflite-micro=FILE is required")
    output = Path(args.output)
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        unpack_tree(archives, partial)
        shutil.rmtree(output, ignore_errors=True)
        partial.rename(output)
    except (tarfile.TarError, ValueError) as err:
        raise InputError(next(iter(archives.values())), err) from err
    except subprocess.CalledProcessError as err:
        raise InputError(err.cmd[-1], f"TFLM's patch does not apply: "
                                      f"{err.stdout}{err.stderr}") from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logging.info("TFLM tree at %s from %s", output,
                 ", ".join(f"{name}={path.name}" for name, path in sorted(archives.items())))


if __name__ == "__main__":
    main_guard(main)
