#!/usr/bin/env python3
"""Build the person-detection application with one model's C files for one core.

The application (scripts/mcu/person_detection_app.cc: the person_detection example's
shape) includes the model's generated <c file>.h and <c file>_settings.h unchanged: the
op resolver from the settings header's op X-macro, the arena of kTensorArenaSize, every
pixel through kPixelToInput, the decision by Detect. It is linked with the core's TFLM
library (build_tflm_library.py): a program for the host, an ELF for a Cortex-M board under
QEMU (with its linker map beside it, --output with .map, for the memory split).

Example:
  python scripts/build_firmware.py --tflm results/mcu/tflm --core cortex-m4f \\
      --library results/mcu/lib/cortex-m4f/libtflm.a \\
      --c-source results/person_detection/c/person_detect_model_data.cc \\
      --array-name g_person_detect_model_data \\
      --output results/person_detection/mcu/cortex-m4f/firmware.elf
"""

import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path
from vww.mcu.build import CORES, build_firmware, core


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflm", required=True, help="TFLM tree (unpack_tflm_sources.py)")
    parser.add_argument("--core", required=True, choices=sorted(CORES), help="target core")
    parser.add_argument("--library", required=True, help="the core's TFLM library")
    parser.add_argument("--c-source", required=True,
                        help="the model's <c file>.cc; its .h and _settings.h beside it")
    parser.add_argument("--array-name", required=True, help="C name of the model's array")
    parser.add_argument("--jobs", type=int, default=1, help="compilers at once (default 1)")
    parser.add_argument("--output", required=True,
                        help="program or ELF to write; a Cortex-M's map goes to .map beside")
    args = parse_logged_args(parser, argv)
    target = core(args.core)
    source = Path(args.c_source)
    c_file = source.stem
    if not re.fullmatch(r"[A-Za-z_]\w*", args.array_name):
        parser.error(f"--array-name {args.array_name!r} is not a C identifier")
    for path in (source, source.with_suffix(".h"), source.with_name(f"{c_file}_settings.h"),
                 Path(args.library)):
        if not path.is_file():
            raise InputError(path, "missing")
    output = Path(args.output)
    start = time.monotonic()
    # A build folder of a fixed name beside the output, not a random temporary one: the
    # linker map names the objects by their paths, and the same inputs give the same map.
    build_dir = output.parent / f".{output.name}.build"
    shutil.rmtree(build_dir, ignore_errors=True)
    try:
        # Linked in the build folder under a fixed name too: the map records it.
        build_firmware(args.tflm, target, args.library, source.parent, c_file,
                       args.array_name, build_dir, build_dir / "firmware", args.jobs)
    except subprocess.CalledProcessError as err:
        raise InputError(source, f"the application does not build with it for {args.core}: "
                                 f"{err.stderr.strip()[-1500:]}") from err
    with atomic_path(output) as tmp:
        shutil.copy2(build_dir / "firmware", tmp)
    if not target.host:
        with atomic_path(output.with_suffix(".map")) as tmp:
            shutil.copyfile(build_dir / "firmware.map", tmp)
    shutil.rmtree(build_dir, ignore_errors=True)
    logging.info("%s: %s in %.1f s", args.core, output, time.monotonic() - start)


if __name__ == "__main__":
    main_guard(main)
