#!/usr/bin/env python3
"""Evaluate a checkpoint on a whole split: every record exactly once.

Reports the accuracy of the weights the model ships with (--eval-weights: the moving
average, "ema", or the raw weights) and of the other set too, the mean cross entropy, the
confusion matrix (rows: true label, columns: predicted), recall by person size (the
negative images, then the positive ones by their largest box's share of the image:
vww.model.metrics) and the image count. Any
checkpoint works, also while training runs (the TFLM guide's "you don't need to wait"). A
checkpoint of a model this workflow made needs no recipe flags: they default to its
model.json (above the train dir); flags given still win.

Example:
  python scripts/evaluate.py --checkpoint results/person_detection/train/model.ckpt-5000 \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --output eval.json
"""

import logging
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf

from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.base.sessions import session_config
from vww.data.records import named_damage
from vww.export import description as model_json
from vww.model import mobilenet_v1, recipe
from vww.model.dataset import add_records_argument, eval_dataset, record_files
from vww.model.metrics import recall_by_person_size
from vww.train.checkpoints import WEIGHTS, check_intact, checkpoint_step, weights_saver

tf1 = tf.compat.v1


def evaluate(checkpoint, files, settings, batch_size=100, threads=0):
    """({weights: {accuracy, loss, confusion_matrix, images, recall_by_person_size}},
    {weights: argmax class of each image, in record order}) for both weight sets, with
    `threads` in TF's op pools (0: one per core)."""
    results, predictions = {}, {}
    graph = tf.Graph()
    with graph.as_default():
        iterator = tf1.data.make_initializable_iterator(eval_dataset(files, settings, batch_size))
        batch = iterator.get_next()
        images, labels = batch["image"], batch["label"]
        logits, _ = mobilenet_v1.build(images, settings, is_training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        predicted = tf.argmax(logits, 1)
        savers = {weights: weights_saver(weights) for weights in WEIGHTS}
        with named_damage(files), tf1.Session(config=session_config(threads)) as sess:
            for weights, saver in savers.items():
                saver.restore(sess, checkpoint)
                sess.run(iterator.initializer)
                runs = []  # (labels, predicted, losses, largest boxes) of each batch
                while True:
                    try:
                        runs.append(sess.run([labels, predicted, losses, batch["largest_box"]]))
                    except tf.errors.OutOfRangeError:
                        break
                all_labels, all_predicted, all_losses, largest_box = map(np.concatenate,
                                                                         zip(*runs))
                predictions[weights] = all_predicted.tolist()
                confusion = np.zeros((2, 2), np.int64)
                np.add.at(confusion, (all_labels, all_predicted), 1)
                count = len(all_labels)
                results[weights] = {
                    "accuracy": float(np.trace(confusion)) / count,
                    "loss": float(all_losses.sum(dtype=np.float64)) / count,
                    "confusion_matrix": confusion.tolist(),
                    "images": count,
                    "recall_by_person_size": recall_by_person_size(all_labels, all_predicted,
                                                                   largest_box),
                }
    return results, predictions


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, help="checkpoint prefix (model.ckpt-N)")
    add_records_argument(parser, "val")
    parser.add_argument("--split", default="val", help="split --records holds (%(default)s)")
    parser.add_argument("--output", required=True, help="JSON report to write")
    parser.add_argument("--predictions", metavar="FILE",
                        help="also write each image's argmax class, in record order, for both "
                             "weight sets (JSON)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of TF's ops (0: one per core)")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    model_json.set_defaults_from(parser, argv, "checkpoint")
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args, recipe.INFERENCE_KEYS)

    files = record_files(args.records, args.split)
    check_intact(args.checkpoint)
    by_weights, predictions = evaluate(args.checkpoint, files, settings, args.batch_size,
                                       args.threads)
    shipped = by_weights[settings["eval_weights"]]
    confusion = np.array(shipped["confusion_matrix"])
    report = {
        "checkpoint": Path(args.checkpoint).name,
        "step": checkpoint_step(args.checkpoint),
        "split": args.split,
        "weights": settings["eval_weights"],
        **shipped,
        "majority_class_rate": float(confusion.sum(axis=1).max()) / shipped["images"],
        "by_weights": by_weights,
    }
    write_json(args.output, report)
    if args.predictions:
        write_json(args.predictions, {"weights": settings["eval_weights"],
                                      "predicted": predictions[settings["eval_weights"]],
                                      "by_weights": predictions})
    for weights, result in by_weights.items():
        logging.info("%s weights%s: accuracy %.4f, loss %.4f on %d images", weights,
                     " (shipped)" if weights == settings["eval_weights"] else "",
                     result["accuracy"], result["loss"], result["images"])
    logging.info("majority class rate %.4f", report["majority_class_rate"])


if __name__ == "__main__":
    main_guard(main)
