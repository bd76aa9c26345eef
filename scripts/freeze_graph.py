#!/usr/bin/env python3
"""Freeze an inference graph with a checkpoint's weights (no TensorFlow source needed).

Every variable becomes a constant holding the checkpoint's value: the moving average of
the weights with --eval-weights ema (the default), the raw weights with raw; the same set
evaluate.py reports as the model's accuracy.

Example:
  python scripts/freeze_graph.py --graph inference_graph.pb \\
      --checkpoint results/person_detection/train/model.ckpt-1000000 --output frozen_graph.pb
"""

import sys

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import atomic_path
from vww.export.graph import FreezeError, freeze, load_graph_def, serialize
from vww.train.checkpoints import WEIGHTS, check_intact


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--graph", required=True, help="inference GraphDef (.pb)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint prefix (model.ckpt-N)")
    parser.add_argument("--eval-weights", choices=WEIGHTS, default="ema",
                        help="weights to freeze (%(default)s)")
    parser.add_argument("--output", required=True, help="frozen GraphDef (.pb) to write")
    args = parser.parse_args(argv)
    graph_def = load_graph_def(args.graph)
    check_intact(args.checkpoint)
    try:
        frozen = freeze(graph_def, args.checkpoint, args.eval_weights)
    except FreezeError as err:
        sys.exit(f"error: {err}")
    with atomic_path(args.output) as tmp:
        tmp.write_bytes(serialize(frozen))


if __name__ == "__main__":
    main_guard(main)
