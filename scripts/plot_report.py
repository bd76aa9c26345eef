#!/usr/bin/env python3
"""Figures for `snakemake --report`: training curves, confusion matrices, val predictions,
ROC and precision-recall, recall by person size, the per-layer table.

- training_curves.png: loss, learning rate and batch accuracy from the TensorBoard events
  in --train-dir;
- confusion_matrix.png: float (checkpoint) and int8 (.tflite) confusion matrices, a class
  never predicted (or never true) said under its matrix;
- val_predictions.png: the first --num-images val images as the model sees them, with the
  int8 model's person score and the true label;
- roc_pr.png: the int8 model's ROC and precision-recall curves under both preprocessings
  (tflite_eval.json), the operating point marked; where it has no precision (no image
  predicted positive) or there is none (no threshold meets its rule), a note says so;
- person_size.png: recall by person size, float and int8 (eval.json, tflite_eval.json),
  each bar's value written on it ("n/a": an empty bucket);
- layers.html: the .tflite's per-layer table (vww.export.layers.layer_table) against the tensor
  arena TFLM measured (--micro-check).

Example:
  python scripts/plot_report.py --train-dir results/person_detection/train --eval eval.json \\
      --tflite-eval tflite_eval.json --micro-check micro_check.json --tflite model.tflite \\
      --records results/datasets/data_coco-person-0.005-192px/records/val.record-* \\
      --output-dir results/person_detection/report
"""

import html
import logging
import textwrap
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vww.base.cli import InputError, cli_parser, main_guard, snakemake_command  # noqa: E402
from vww.base.files import atomic_path, write_text  # noqa: E402
from vww.data.coco import load_json  # noqa: E402
from vww.export.layers import layer_table  # noqa: E402
from vww.export.litert import dequantize, input_int8, invoke, io_quantization, load_classifier  # noqa: E402
from vww.model import recipe  # noqa: E402
from vww.model.dataset import add_records_argument, eval_examples, record_files  # noqa: E402

CURVES = (("losses/total_loss", "total loss"), ("learning_rate", "learning rate"),
          ("batch_accuracy", "batch accuracy (train mode)"))
CLASSES = ("background", "positive")
NOTE_COLUMNS = 50  # a note under a plot, wrapped to about a 4-inch axis


def save(figure, path):
    # Agg writes no date; dropping the Software entry keeps the bytes matplotlib-version free.
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def with_notes(label, notes):
    """An axis label with, under it, what the plot cannot show (a weak model's figures)."""
    return "\n".join([label, *(textwrap.fill(note, NOTE_COLUMNS) for note in notes)])


def read_events(path):
    """The events of a TensorBoard file, up to its last record if a run killed while writing
    it (kill -9, a lost node) left that one cut short: the events before it are whole, and
    the run's resume writes a new file. Damage before the end is an InputError naming the
    file."""
    events = tf.compat.v1.train.summary_iterator(str(path))
    while True:
        try:
            yield next(events)
        except StopIteration:
            return
        except tf.errors.DataLossError as err:
            if err.message.startswith("truncated record"):
                logging.warning("%s: its last record is cut short (%s): the curves stop "
                                "before it", path, err.message)
                return
            raise InputError(path, f"damaged ({err.message}): delete it (the training curves "
                                   "lose its points; the checkpoints are not in it), then "
                                   f"{snakemake_command()}") from err


def scalar_series(train_dir):
    series = {tag: {} for tag, _ in CURVES}
    for events in sorted(Path(train_dir).glob("events.out.tfevents.*")):
        for event in read_events(events):
            for value in event.summary.value:
                if value.tag in series:
                    series[value.tag][event.step] = value.simple_value
    return series


def plot_curves(train_dir, path):
    series = scalar_series(train_dir)
    figure, axes = plt.subplots(1, len(CURVES), figsize=(12, 3.2))
    for axis, (tag, title) in zip(axes, CURVES):
        steps = sorted(series[tag])
        axis.plot(steps, [series[tag][s] for s in steps], marker=".")
        axis.set_title(title)
        axis.set_xlabel("step")
    figure.tight_layout()
    save(figure, path)


def plot_confusion(matrices, path):
    figure, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 3.6))
    for axis, (title, matrix) in zip(axes, matrices.items()):
        matrix = np.array(matrix)
        axis.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            axis.text(col, row, str(count), ha="center", va="center",
                      color="white" if count > matrix.max() / 2 else "black")
        axis.set_xticks([0, 1], CLASSES)
        axis.set_yticks([0, 1], CLASSES)
        notes = [f"no image predicted {name}" for name, column in zip(CLASSES, matrix.T)
                 if not column.any()]
        notes += [f"no {name} image" for name, row in zip(CLASSES, matrix) if not row.any()]
        axis.set_xlabel(with_notes("predicted", notes))
        axis.set_ylabel("true")
        axis.set_title(title)
    figure.tight_layout()
    save(figure, path)


def plot_predictions(runner, records, settings, num_images, path):
    _, (out_scale, out_zero) = io_quantization(runner)
    examples = list(eval_examples(record_files(records, "val"), settings, num_images))
    columns = 4
    rows = -(-len(examples) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image, label, name, _) in zip(axes.flat, examples):
        scores = dequantize(invoke(runner, input_int8(runner, image)), out_scale, out_zero)
        axis.imshow((image[0, :, :, 0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
        correct = int(np.argmax(scores)) == label
        axis.set_title(f"score {scores[1]:.2f}, label {label}\n{name[-16:]}", fontsize=8,
                       color="black" if correct else "red")
    figure.tight_layout()
    save(figure, path)


def plot_roc_pr(tflite_eval, path):
    figure, (roc, pr) = plt.subplots(1, 2, figsize=(9, 4))
    notes = {roc: [], pr: []}
    for kind, report in tflite_eval["by_preprocessing"].items():
        curves = report["curves"]
        # From (0, 0), no image positive, to the lowest threshold's (1, 1).
        roc.plot([0, *curves["false_positive_rate"][::-1]],
                 [0, *curves["true_positive_rate"][::-1]],
                 label=f"{kind} (AUC {report['roc_auc']:.3f})")
        # Precision exists at a threshold some image reaches (always -128's); the markers
        # show a model that scores every image alike: its curve is one point.
        kept = [(r, p) for r, p in zip(curves["true_positive_rate"], curves["precision"])
                if p is not None]
        pr.plot(*zip(*kept), marker=".", label=f"{kind} (AP {report['average_precision']:.3f})")
        if len(set(kept)) == 1:
            notes[pr].append(f"{kind}: every image scores the same: one point")
    point = tflite_eval["operating_point"]
    if point["threshold"] is None:
        for axis_notes in notes.values():
            axis_notes.append(f"no operating point: {point['undefined']['threshold']}")
    else:
        curves = tflite_eval["by_preprocessing"][point["preprocessing"]]["curves"]
        at = curves["thresholds"].index(point["threshold"])
        roc.plot(curves["false_positive_rate"][at], curves["true_positive_rate"][at], "ko",
                 label=f"threshold {point['threshold']} ({point['rule']}, "
                       f"{point['preprocessing']})")
        if curves["precision"][at] is None:
            notes[pr].append(f"precision undefined at the operating point (threshold "
                             f"{point['threshold']}): no image predicted positive there")
        else:
            pr.plot(curves["true_positive_rate"][at], curves["precision"][at], "ko")
    for axis, (x, y), title in ((roc, ("false positive rate", "true positive rate"), "ROC"),
                                (pr, ("recall", "precision"), "precision-recall")):
        axis.set_xlabel(with_notes(x, notes[axis]))
        axis.set_ylabel(y)
        axis.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        axis.set_title(f"{title}, int8 on {tflite_eval['split']}")
        axis.legend(fontsize=8)
    figure.tight_layout()
    save(figure, path)


def plot_person_size(reports, path):
    """Bars of recall per size bucket, one series per {title: recall_by_person_size}, each
    bar's value written on it: a recall of 0 has no bar either."""
    buckets = next(iter(reports.values()))
    figure, axis = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(reports)
    for offset, (title, by_size) in enumerate(reports.items()):
        recalls = [bucket["recall"] for bucket in by_size]
        bars = axis.bar(np.arange(len(buckets)) + offset * width,
                        [recall or 0 for recall in recalls], width, label=title)
        axis.bar_label(bars, ["n/a" if recall is None else f"{recall:.2f}" for recall in recalls],
                       fontsize=7)
    axis.set_xticks(np.arange(len(buckets)) + width * (len(reports) - 1) / 2,
                    [f"{b['bucket']}\n{b['images']} images" for b in buckets])
    empty = ["n/a: no image in the bucket, no recall"] if any(
        b["recall"] is None for b in buckets) else []
    axis.set_xlabel(with_notes("largest person box, share of the image", empty))
    axis.set_ylabel("recall of the true class")
    axis.set_ylim(0, 1.1)  # room for the values over the bars of recall 1
    axis.legend(fontsize=8)
    figure.tight_layout()
    save(figure, path)


def layers_html(layers, arena_bytes):
    """The per-layer table as an HTML page (the report shows HTML, not TSV)."""
    columns = ("op", "output_shape", "macs", "parameters", "activation_bytes", "live_bytes")

    def row(cells, tag="td"):
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    def number(value):
        return f"{value:,}" if isinstance(value, int) else value

    lines = [row(["#", *columns], "th")]
    lines += [row([index, *(number(layer[key]) for key in columns)])
              for index, layer in enumerate(layers, 1)]
    lines.append(row(["", "total", "", number(sum(layer["macs"] for layer in layers)),
                      number(sum(layer["parameters"] for layer in layers)), "",
                      f"largest {max(layer['live_bytes'] for layer in layers):,}"]))
    return "\n".join([
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>layers</title></head><body>',
        '<table border="1" cellpadding="3">', *lines, "</table>",
        "<p>live_bytes: the activations an op reads and writes, in the tensor arena at once. "
        f"TFLM measured an arena of {arena_bytes:,} bytes, its bookkeeping and scratch "
        "buffers included.</p>", "</body></html>", ""])


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--train-dir", required=True, help="training folder (events files)")
    parser.add_argument("--eval", required=True, help="evaluate.py's JSON")
    parser.add_argument("--tflite-eval", required=True, help="evaluate_tflite.py's JSON")
    parser.add_argument("--micro-check", required=True, help="check_micro.py's JSON (the arena)")
    parser.add_argument("--tflite", required=True, help="the int8 .tflite")
    add_records_argument(parser, "val")
    parser.add_argument("--num-images", type=int, default=16, help="val images to show")
    parser.add_argument("--output-dir", required=True, help="where the PNGs go")
    recipe.add_arguments(parser, recipe.INPUT_KEYS)
    args = parser.parse_args(argv)
    settings = recipe.from_args(args, recipe.INPUT_KEYS)
    out = Path(args.output_dir)

    plot_curves(args.train_dir, out / "training_curves.png")
    matrices = {
        "float (checkpoint)": load_json(args.eval)["confusion_matrix"],
        "int8 (.tflite)": load_json(args.tflite_eval)["confusion_matrix"],
    }
    plot_confusion(matrices, out / "confusion_matrix.png")
    _, runner = load_classifier(args.tflite, settings)
    plot_predictions(runner, args.records, settings, args.num_images,
                     out / "val_predictions.png")
    tflite_eval = load_json(args.tflite_eval)
    plot_roc_pr(tflite_eval, out / "roc_pr.png")
    plot_person_size({
        "float (checkpoint), slim_eval": load_json(args.eval)["recall_by_person_size"],
        **{f"int8, {kind}": report["recall_by_person_size"]
           for kind, report in tflite_eval["by_preprocessing"].items()},
    }, out / "person_size.png")
    write_text(out / "layers.html",
               layers_html(layer_table(runner), load_json(args.micro_check)["arena_bytes"]))


if __name__ == "__main__":
    main_guard(main)
