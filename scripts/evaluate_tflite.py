#!/usr/bin/env python3
"""Evaluate an int8 .tflite on a whole split with TFLite's reference kernels (TFLM's
arithmetic), under both preprocessings.

- slim_eval: the TFLM guide's protocol, as the float evaluation (central 87.5% crop, resize,
  quantized with the model's input scale and zero point). Its accuracy is int8_accuracy,
  and with --float-eval (evaluate.py's report of the checkpoint the model was frozen
  from) the report holds the float accuracy and the float-minus-int8 gap;
- device: what a board computes (preprocessing.device_frame: the whole stored picture as
  an 8-bit camera frame, each pixel mapped as the settings header's kPixelToInput).

For each: accuracy (argmax) and confusion matrix, ROC and precision-recall curves over the
int8 person-score thresholds with ROC AUC and average precision, and recall by person
size (vww.model.metrics). The operating point (threshold and unsure band, --operating-rule,
--unsure-margin) is chosen on the device scores: the board's. It is chosen and measured
on this split; val is the only held-out split VWW has. A weak model still gets its
report: a rate with nothing to count (the precision where no image is predicted person,
the threshold when none meets --max-false-positive-rate) is null, and "undefined" beside
it says why.

Example:
  python scripts/evaluate_tflite.py --tflite model.tflite \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --float-eval eval.json --operating-rule best_accuracy --unsure-margin 0.1 \\
      --output tflite_eval.json
"""

import logging

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.data.coco import load_json
from vww.export.litert import input_int8, invoke, io_quantization, load_classifier
from vww.model import metrics, recipe, registry
from vww.model.dataset import add_records_argument, eval_examples, record_files

# The preprocessing whose scores set the operating point: the board's.
OPERATING_PREPROCESSING = registry.DEVICE_PREPROCESSING


def int8_scores(runner, files, settings, kind):
    """(int8 scores [N, 2], labels [N], largest box fractions [N]) of the split."""
    scores, labels, boxes = [], [], []
    for example in eval_examples(files, settings, kind=kind):
        scores.append(invoke(runner, input_int8(runner, example.image)))
        labels.append(example.label)
        boxes.append(example.largest_box)
    return np.array(scores), np.array(labels), np.array(boxes)


def preprocessing_report(scores, labels, boxes):
    predicted = np.argmax(scores, axis=1)
    confusion = np.zeros((2, 2), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    curves = metrics.curves(labels, scores[:, metrics.POSITIVE])
    return {
        "accuracy": float(np.trace(confusion)) / len(labels),
        "confusion_matrix": confusion.tolist(),
        "roc_auc": curves.pop("roc_auc"),
        "average_precision": curves.pop("average_precision"),
        "recall_by_person_size": metrics.recall_by_person_size(labels, predicted, boxes),
        "curves": curves,
    }


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="int8 .tflite")
    add_records_argument(parser, "val")
    parser.add_argument("--split", default="val", help="split to evaluate (%(default)s)")
    parser.add_argument("--float-eval", help="evaluate.py's JSON, for the float-int8 gap")
    parser.add_argument("--operating-rule", choices=registry.OPERATING_RULES,
                        default="best_accuracy",
                        help="how the person-score threshold is chosen (%(default)s)")
    parser.add_argument("--max-false-positive-rate", type=float, default=0.05,
                        help="with --operating-rule max_false_positive_rate: the lowest "
                             "threshold with at most this rate (%(default)s)")
    parser.add_argument("--unsure-margin", type=float, default=0.0,
                        help="scores less than this probability from the threshold's are "
                             "'unsure' (%(default)s: no unsure band)")
    parser.add_argument("--output", required=True, help="JSON report to write")
    parser.add_argument("--predictions", metavar="FILE",
                        help="also write each image's label and int8 argmax class, in record "
                             "order, under both preprocessings (JSON)")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)

    _, runner = load_classifier(args.tflite, settings)
    _, output_quantization = io_quantization(runner)
    files = record_files(args.records, args.split)
    by_preprocessing, operating, predicted = {}, None, {}
    for kind in registry.EVAL_PREPROCESSINGS:
        scores, labels, boxes = int8_scores(runner, files, settings, kind)
        predicted[kind] = np.argmax(scores, axis=1).tolist()
        if len(set(labels)) < 2:
            raise InputError(files[0], f"the {args.split} split has images of one class only "
                                       f"({labels.size} of class {labels[0]}): no ROC")
        by_preprocessing[kind] = preprocessing_report(scores, labels, boxes)
        if kind == OPERATING_PREPROCESSING:
            operating = metrics.operating_point(
                labels, scores[:, metrics.POSITIVE], args.operating_rule,
                args.max_false_positive_rate, args.unsure_margin, output_quantization)
    slim, device = by_preprocessing["slim_eval"], by_preprocessing["device"]
    report = {
        "split": args.split,
        "images": len(labels),
        "int8_accuracy": slim["accuracy"],
        "confusion_matrix": slim["confusion_matrix"],
        "device_int8_accuracy": device["accuracy"],
        "device_minus_slim_eval": device["accuracy"] - slim["accuracy"],
        "operating_point": {"preprocessing": OPERATING_PREPROCESSING, **operating},
        "by_preprocessing": by_preprocessing,
    }
    if args.float_eval:
        float_eval = load_json(args.float_eval)
        if float_eval["images"] != len(labels):
            raise InputError(args.float_eval, f"counts {float_eval['images']} images, the split "
                                              f"has {len(labels)}")
        report["float_accuracy"] = float_eval["accuracy"]
        report["float_minus_int8"] = float_eval["accuracy"] - report["int8_accuracy"]
    write_json(args.output, report)
    if args.predictions:
        write_json(args.predictions, {"labels": labels.tolist(), "predicted": predicted})
    logging.info("int8 accuracy %.4f (slim eval), %.4f (device) on %d images%s; ROC AUC %.4f "
                 "(device); threshold %s (%s)", slim["accuracy"], device["accuracy"],
                 len(labels), f"; float {report['float_accuracy']:.4f}" if args.float_eval
                 else "", device["roc_auc"], operating["threshold"], args.operating_rule)


if __name__ == "__main__":
    main_guard(main)
