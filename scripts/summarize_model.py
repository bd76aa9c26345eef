#!/usr/bin/env python3
"""Summarize a built model: accuracy float vs int8 (and on the device's preprocessing),
ROC AUC and operating point, size, arena, parameters, MACs, ops, and the per-layer table
(vww.export.layers.layer_table: op, output shape, MACs, parameters, activation bytes).

Gathers evaluate.py's, evaluate_tflite.py's and check_micro.py's reports and the .tflite
into one JSON, with the path of every artifact. For a fine-tuned model, --init-eval (the
starting model evaluated on this model's val split) adds the accuracy before and after.
The operating point is tflite_eval.json's as it is: for a weak model, null where a rate
is undefined or no threshold met its rule, with "undefined" saying why.

Example:
  python scripts/summarize_model.py --model person_detection --eval eval.json \\
      --tflite-eval tflite_eval.json --micro-check micro_check.json --tflite model.tflite \\
      --artifact c_source=person_detect_model_data.cc --output summary.json
"""


import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf

from vww.base.cli import cli_parser, main_guard
from vww.base.files import write_json
from vww.data.coco import load_json
from vww.export.graph import input_shape
from vww.export.layers import layer_table
from vww.export.litert import load_classifier
from vww.model import mobilenet_v1, recipe

# TFLM's own person_detect.tflite, for comparison.
TFLM_EXAMPLE_TFLITE_BYTES = 300_568


def trainable_parameters(settings):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, input_shape(settings))
        mobilenet_v1.build(images, settings, is_training=False)  # the same variables
        return sum(int(np.prod(v.shape)) for v in tf.compat.v1.trainable_variables())


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--eval", required=True, help="evaluate.py's JSON (float)")
    parser.add_argument("--tflite-eval", required=True, help="evaluate_tflite.py's JSON")
    parser.add_argument("--micro-check", required=True, help="check_micro.py's JSON")
    parser.add_argument("--tflite", required=True, help="the int8 .tflite")
    parser.add_argument("--init-eval", metavar="JSON",
                        help="fine-tuned model: evaluate.py's JSON of the model it started from")
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME=PATH",
                        help="another artifact to list (repeatable)")
    parser.add_argument("--output", required=True, help="summary JSON to write")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    args = parser.parse_args(argv)
    settings = recipe.from_args(args, recipe.INFERENCE_KEYS)

    reports = {name: load_json(path)
               for name, path in (("eval", args.eval), ("tflite_eval", args.tflite_eval),
                                  ("micro_check", args.micro_check))}
    model, runner = load_classifier(args.tflite, settings)
    layers = layer_table(runner)
    ops = reports["micro_check"]["ops"]  # check_micro.py counted them on this model
    summary = {
        "model": args.model,
        "checkpoint_step": reports["eval"]["step"],
        "weights": reports["eval"]["weights"],
        "val_images": reports["tflite_eval"]["images"],
        "float_accuracy": reports["eval"]["accuracy"],
        "int8_accuracy": reports["tflite_eval"]["int8_accuracy"],
        "float_minus_int8": reports["eval"]["accuracy"] - reports["tflite_eval"]["int8_accuracy"],
        "majority_class_rate": reports["eval"]["majority_class_rate"],
        "tflite_bytes": len(model),
        "tflm_example_tflite_bytes": TFLM_EXAMPLE_TFLITE_BYTES,
        "arena_bytes": reports["micro_check"]["arena_bytes"],
        "trainable_parameters": trainable_parameters(settings),
        "tflite_parameters": sum(layer["parameters"] for layer in layers),
        "macs": sum(layer["macs"] for layer in layers),
        "peak_live_bytes": max(layer["live_bytes"] for layer in layers),
        "ops": ops,
        "op_count": sum(ops.values()),
        "tflm_litert_images_compared": reports["micro_check"]["images_compared"],
        "tflm_litert_mismatches": len(reports["micro_check"]["mismatches"]),
        "device_int8_accuracy": reports["tflite_eval"]["device_int8_accuracy"],
        "roc_auc": reports["tflite_eval"]["by_preprocessing"]["device"]["roc_auc"],
        "operating_point": reports["tflite_eval"]["operating_point"],
        "layers": layers,
        "artifacts": dict(sorted(
            [("eval", args.eval), ("tflite_eval", args.tflite_eval),
             ("micro_check", args.micro_check), ("tflite", args.tflite)]
            + [tuple(item.split("=", 1)) for item in args.artifact])),
    }
    if args.init_eval:
        before = load_json(args.init_eval)
        summary["fine_tuning"] = {
            "from_checkpoint": before["checkpoint"],
            "accuracy_before": before["accuracy"],
            "accuracy_after": reports["eval"]["accuracy"],
        }
        summary["artifacts"]["init_eval"] = args.init_eval
    write_json(args.output, summary)


if __name__ == "__main__":
    main_guard(main)
