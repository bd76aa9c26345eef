#!/usr/bin/env python3
"""Check that a .tflite runs in TensorFlow Lite Micro and computes what LiteRT computes.

Loads the model in TFLM's Python interpreter (a model with an op TFLM lacks fails here,
naming the op), runs --num-images val images (all with 0) through both TFLM and LiteRT on
the same int8 inputs, and fails unless every output agrees exactly. Reports the tensor arena
the model needs, its op list, and the images compared.

Example:
  python scripts/check_micro.py --tflite model.tflite \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --output micro_check.json
"""

import logging
import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.export import micro
from vww.export.layers import op_counts
from vww.export.litert import input_int8, invoke, load_classifier
from vww.model import recipe
from vww.model.dataset import add_records_argument, eval_examples, record_files


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="int8 .tflite")
    add_records_argument(parser, "val")
    parser.add_argument("--num-images", type=int, default=0,
                        help="val images to compare (0: all, the default)")
    parser.add_argument("--output", required=True, help="JSON report to write")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)

    model, litert = load_classifier(args.tflite, settings)
    try:
        tflm = micro.load(model)
    except micro.MicroError as err:
        raise InputError(args.tflite, err) from err
    compared, mismatches = 0, []
    files = record_files(args.records, "val")
    for image, _, name, _ in eval_examples(files, settings, args.num_images or None):
        int8_input = input_int8(litert, image)
        expected = invoke(litert, int8_input)
        got = micro.run(tflm, int8_input)
        compared += 1
        if not np.array_equal(expected, got):
            mismatches.append({"file_name": name, "litert": expected.tolist(),
                               "tflm": got.tolist()})
    report = {
        "images_compared": compared,
        "mismatches": mismatches,
        "arena_bytes": micro.arena_bytes_used(tflm),
        "ops": op_counts(litert),
    }
    write_json(args.output, report)
    logging.info("TFLM vs LiteRT on %d images: %d mismatches; arena %d bytes; ops %s",
                 compared, len(mismatches), report["arena_bytes"], report["ops"])
    if mismatches:
        sys.exit(f"error: TFLM and LiteRT disagree on {len(mismatches)} of {compared} images "
                 f"(first: {mismatches[0]})")


if __name__ == "__main__":
    main_guard(main)
