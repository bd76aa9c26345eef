#!/usr/bin/env python3
"""Quantize a frozen graph to a full-int8 .tflite (int8 input and output, int8 builtin ops).

Activation ranges are calibrated on the first --num-images records of the val split, passed
through the evaluation preprocessing (central crop, resize, grayscale, [-1, 1]) that the
model was evaluated with. The input's scale and zero point are logged: with the usual
1/127.5 and -1 (or 0), a camera's 8-bit pixel p in [0, 255] maps to the int8 input
round(p / (255 * scale) - 1 / scale) + zero_point, i.e. p - 128.

Example:
  python scripts/quantize.py --frozen-graph frozen_graph.pb \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --output model.tflite
"""

import logging

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import atomic_path
from vww.export.convert import convert_int8
from vww.export.graph import INPUT_NODE, OUTPUT_NODE, load_graph_def
from vww.export.litert import interpreter, io_quantization
from vww.model import recipe
from vww.model.dataset import add_records_argument, eval_examples, record_files


def check_frozen_graph(path):
    """Fail naming the file on what the converter would report without naming it."""
    nodes = {node.name for node in load_graph_def(path).node}
    missing = [name for name in (INPUT_NODE, OUTPUT_NODE) if name not in nodes]
    if missing:
        raise InputError(path, f"no {' or '.join(missing)} node: not the model's frozen "
                               "inference graph (freeze_graph.py writes it)")


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--frozen-graph", required=True, help="frozen GraphDef (.pb)")
    add_records_argument(parser, "val")
    parser.add_argument("--num-images", type=int, default=250,
                        help="val images to calibrate on (%(default)s, the TFLM guide's)")
    parser.add_argument("--output", required=True, help=".tflite to write")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)

    check_frozen_graph(args.frozen_graph)
    images = [example.image for example in
              eval_examples(record_files(args.records, "val"), settings, args.num_images)]
    model = convert_int8(args.frozen_graph, settings, images)
    with atomic_path(args.output) as tmp:
        tmp.write_bytes(model)
    (in_scale, in_zero), (out_scale, out_zero) = io_quantization(interpreter(model))
    logging.info("%s: %d bytes, calibrated on %d images; input scale %.8f zero point %d, "
                 "output scale %.8f zero point %d", args.output, len(model), len(images),
                 in_scale, in_zero, out_scale, out_zero)


if __name__ == "__main__":
    main_guard(main)
