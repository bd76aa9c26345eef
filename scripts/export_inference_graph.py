#!/usr/bin/env python3
"""Export the inference graph of MobileNet v1 as a GraphDef, without weights.

The graph takes a float image `input` [1, H, W, C] (eval-preprocessed: [-1, 1]) and returns
the softmax probabilities `MobilenetV1/Predictions` [1, 2] (0 = background, 1 = the
category). freeze_graph.py then fills in a checkpoint's weights.

Example:
  python scripts/export_inference_graph.py --output inference_graph.pb
"""


import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import atomic_path
from vww.export.graph import inference_graph_def, serialize
from vww.model import recipe


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--output", required=True, help="GraphDef (.pb) to write")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    args = parser.parse_args(argv)
    graph_def = inference_graph_def(recipe.from_args(args, recipe.INFERENCE_KEYS))
    with atomic_path(args.output) as tmp:
        tmp.write_bytes(serialize(graph_def))


if __name__ == "__main__":
    main_guard(main)
