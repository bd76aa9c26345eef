#!/usr/bin/env python3
"""Take the .tflite model out of a published zip (such as TFLM's person model's).

The zip's one .tflite file is written as it is. A zip with none holds the model as C
source, as TFLM's example downloads do (a `*_model_data.cc` with `const unsigned char
g_..._model_data[] = {0x1c, 0x00, ...};`): the one array of such a file whose bytes are a
TFLite flatbuffer ('TFL3' at bytes 4-8) is written. A zip with several models, or none,
fails naming them.

Example:
  python scripts/extract_tflite.py \\
      --zip data/published/tf_lite_micro_person_data_int8_grayscale_2020_12_1.zip \\
      --output results/published/tflm_person.tflite
"""

import logging
import re
import zipfile

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path

TFLITE_IDENTIFIER = b"TFL3"
C_SUFFIXES = (".c", ".cc", ".cpp")
# An initialized C array: `name[] ... = { ... };`
C_ARRAY = re.compile(r"(\w+)\s*\[[^\]]*\][^=;{]*=\s*\{([^}]*)\}")
C_INTEGER = re.compile(r"0[xX][0-9a-fA-F]+|\d+")


def c_arrays(text):
    """{array name: bytes} of the initialized integer arrays of a C source whose values all
    fit a byte."""
    arrays = {}
    for match in C_ARRAY.finditer(re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)):
        values = [int(token, 0) for token in C_INTEGER.findall(match[2])]
        if values and all(0 <= value < 256 for value in values):
            arrays[match[1]] = bytes(values)
    return arrays


def models_in_zip(path):
    """[(where, bytes)] of the TFLite models in a zip: its .tflite files, else the model
    arrays of its C sources."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(name for name in archive.namelist() if not name.endswith("/"))
            tflites = [name for name in members if name.lower().endswith(".tflite")]
            if tflites:
                return [(name, archive.read(name)) for name in tflites]
            return [(f"{name}: {array}", data)
                    for name in members if name.lower().endswith(C_SUFFIXES)
                    for array, data in sorted(c_arrays(archive.read(name).decode(
                        "utf-8", errors="replace")).items())
                    if data[4:8] == TFLITE_IDENTIFIER]
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(path, f"not a readable zip ({err})") from err


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--zip", required=True, help="the published zip")
    parser.add_argument("--output", required=True, help=".tflite to write")
    args = parse_logged_args(parser, argv)
    models = models_in_zip(args.zip)
    if len(models) != 1:
        found = "; ".join(where for where, _ in models) or "none"
        raise InputError(args.zip, f"holds {len(models)} TFLite models, not one: {found} "
                                   "(a .tflite file, or a C array of a .tflite's bytes)")
    where, model = models[0]
    with atomic_path(args.output) as tmp:
        tmp.write_bytes(model)
    logging.info("%s: wrote %s (%d bytes) from %s", args.zip, args.output, len(model), where)


if __name__ == "__main__":
    main_guard(main)
