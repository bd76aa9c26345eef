#!/usr/bin/env python3
"""How faithful an imported checkpoint is to the int8 .tflite it was imported from.

On every --records image (the TFLM guide's evaluation preprocessing, as eval.json), it compares:
- the float model of the import (--checkpoint, its ema weights) with the original int8
  model (--tflite): accuracy of each, and the share of images where both decide alike;
- with --requantized (the import frozen and quantized again by the workflow's own export):
  its int8 scores against the original's, the largest difference in int8 steps and in
  probability, and the decisions.

Example:
  python scripts/report_import.py --tflite person_detect.tflite \\
      --checkpoint results/face_detection/init/model.ckpt-0 \\
      --requantized results/face_detection/init/requantized.tflite \\
      --records results/datasets/<dataset>/records/val.record-* --output import_report.json
"""

import logging
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import sha256_file, write_json
from vww.export.litert import input_int8, invoke, io_quantization, load_classifier
from vww.model import mobilenet_v1, recipe
from vww.model.dataset import add_records_argument, eval_examples, record_files
from vww.train.checkpoints import check_intact, weights_saver

tf1 = tf.compat.v1


def float_probabilities(checkpoint, settings, images):
    """Softmax outputs [N, 2] of a checkpoint's ema weights on float images [1, H, W, C]."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, images[0].shape)
        _, end_points = mobilenet_v1.build(inputs, settings, is_training=False)
        saver = weights_saver("ema")
        with tf1.Session() as sess:
            saver.restore(sess, checkpoint)
            return np.concatenate([sess.run(end_points["Predictions"], {inputs: image})
                                   for image in images])


def int8_scores(path, settings, images):
    """(int8 scores [N, 2], probabilities [N, 2]) of an int8 .tflite in LiteRT."""
    _, runner = load_classifier(path, settings)
    scores = np.stack([invoke(runner, input_int8(runner, image)) for image in images])
    _, (scale, zero_point) = io_quantization(runner)
    return scores, (scores.astype(np.float64) - zero_point) * scale


def accuracy(labels, decisions):
    correct = int((labels == decisions).sum())
    return {"accuracy": correct / len(labels), "correct": correct}


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="the int8 .tflite imported")
    parser.add_argument("--checkpoint", required=True,
                        help="the imported checkpoint prefix (model.ckpt-0)")
    parser.add_argument("--requantized", help="the import exported to int8 again (.tflite)")
    add_records_argument(parser, "val")
    parser.add_argument("--output", required=True, help="JSON report to write")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INFERENCE_KEYS)

    check_intact(args.checkpoint)
    examples = list(eval_examples(record_files(args.records, "val"), settings))
    images = [example.image for example in examples]
    labels = np.array([example.label for example in examples])
    float_decisions = float_probabilities(args.checkpoint, settings, images).argmax(axis=1)
    original, original_probabilities = int8_scores(args.tflite, settings, images)
    int8_decisions = original.argmax(axis=1)
    agree = int((float_decisions == int8_decisions).sum())
    report = {
        "tflite": Path(args.tflite).name,
        "tflite_sha256": sha256_file(args.tflite),
        "images": len(labels),
        "float": accuracy(labels, float_decisions),
        "int8": accuracy(labels, int8_decisions),
        "decisions_agree": agree,
        "agreement": agree / len(labels),
    }
    report["accuracy_gap_images"] = report["float"]["correct"] - report["int8"]["correct"]
    logging.info("float import %.4f, original int8 %.4f, decisions agree on %d of %d images",
                 report["float"]["accuracy"], report["int8"]["accuracy"], agree, len(labels))
    if args.requantized:
        again, again_probabilities = int8_scores(args.requantized, settings, images)
        steps = np.abs(again.astype(np.int32) - original.astype(np.int32))
        same = int((again.argmax(axis=1) == int8_decisions).sum())
        report["requantized"] = {
            **accuracy(labels, again.argmax(axis=1)),
            "decisions_agree": same,
            "agreement": same / len(labels),
            "max_score_difference_int8": int(steps.max()),
            "mean_score_difference_int8": float(steps.mean()),
            "max_probability_difference": float(
                np.abs(again_probabilities - original_probabilities).max()),
        }
        logging.info("requantized: decisions agree on %d of %d images; scores differ by at "
                     "most %d int8 steps (%.4f in probability)", same, len(labels),
                     steps.max(), report["requantized"]["max_probability_difference"])
    write_json(args.output, report)


if __name__ == "__main__":
    main_guard(main)
