#!/usr/bin/env python3
"""Compile the TFLM sources our models need for one core into a static library.

Not TFLM's whole library: its framework and the kernels of the five ops the person model
uses, with CMSIS-NN's kernels on a Cortex-M (vww/mcu/build.py has the list and the flags:
TFLM's Makefile's, for its cortex_m_generic target on a Cortex-M). The same library serves
every model of the workflow. Debian's g++ builds for the host, arm-none-eabi-gcc for a
Cortex-M.

Example:
  python scripts/build_tflm_library.py --tflm results/mcu/tflm --core cortex-m4f \\
      --jobs 2 --output results/mcu/lib/cortex-m4f/libtflm.a
"""

import logging
import subprocess
import tempfile
import time
from pathlib import Path

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path
from vww.mcu.build import CORES, build_library, core


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflm", required=True, help="TFLM tree (unpack_tflm_sources.py)")
    parser.add_argument("--core", required=True, choices=sorted(CORES), help="target core")
    parser.add_argument("--jobs", type=int, default=1, help="compilers at once (default 1)")
    parser.add_argument("--output", required=True, help="static library to write (.a)")
    args = parse_logged_args(parser, argv)
    target = core(args.core)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tflm-objects-") as objects, \
            atomic_path(args.output) as tmp:
        try:
            count = build_library(args.tflm, target, objects, tmp.with_suffix(".a"), args.jobs)
        except FileNotFoundError as err:
            raise InputError(args.tflm, err) from err
        except subprocess.CalledProcessError as err:
            raise InputError(err.cmd.split()[-3], f"does not compile for {args.core}: "
                                                  f"{err.stderr.strip()[-1500:]}") from err
        tmp.with_suffix(".a").replace(tmp)
    logging.info("%s: %d sources in %.1f s with %d jobs -> %s", args.core, count,
                 time.monotonic() - start, args.jobs, Path(args.output))


if __name__ == "__main__":
    main_guard(main)
