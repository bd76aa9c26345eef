#!/usr/bin/env python3
"""Evaluate an int8 .tflite on a whole split with the LiteRT interpreter.

Every record is preprocessed exactly as for the float evaluation, quantized with the
model's input scale and zero point, and run once. With --float-eval (evaluate.py's report
of the checkpoint the model was frozen from) the report also holds the float accuracy and
the float-minus-int8 gap.

Example:
  python scripts/evaluate_tflite.py --tflite model.tflite \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --float-eval eval.json \\
      --output tflite_eval.json
"""

import logging

import numpy as np

from vww import recipe
from vww.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.coco import load_json
from vww.dataset import add_records_argument, eval_examples, record_files
from vww.files import write_json
from vww.tflite import input_int8, invoke, load_classifier


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="int8 .tflite")
    add_records_argument(parser, "val")
    parser.add_argument("--split", default="val", help="split to evaluate (%(default)s)")
    parser.add_argument("--float-eval", help="evaluate.py's JSON, for the float-int8 gap")
    parser.add_argument("--output", required=True, help="JSON report to write")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)

    _, runner = load_classifier(args.tflite, settings)
    confusion = np.zeros((2, 2), np.int64)
    for image, label, _ in eval_examples(record_files(args.records, args.split), settings):
        confusion[label, int(np.argmax(invoke(runner, input_int8(runner, image))))] += 1
    images = int(confusion.sum())
    report = {
        "split": args.split,
        "images": images,
        "int8_accuracy": float(np.trace(confusion)) / images,
        "confusion_matrix": confusion.tolist(),
    }
    if args.float_eval:
        float_eval = load_json(args.float_eval)
        if float_eval["images"] != images:
            raise InputError(args.float_eval, f"counts {float_eval['images']} images, the split "
                                              f"has {images}")
        report["float_accuracy"] = float_eval["accuracy"]
        report["float_minus_int8"] = float_eval["accuracy"] - report["int8_accuracy"]
    write_json(args.output, report)
    logging.info("int8 accuracy %.4f on %d images%s", report["int8_accuracy"], images,
                 f"; float {report['float_accuracy']:.4f}" if args.float_eval else "")


if __name__ == "__main__":
    main_guard(main)
