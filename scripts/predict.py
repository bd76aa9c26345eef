#!/usr/bin/env python3
"""Classify image files with a trained model: an int8 .tflite or a checkpoint.

Each image is preprocessed as --preprocessing says:
- device (default): as a board sees the picture through a camera set to the model's
  input (vww.model.preprocessing.device_frame: the whole picture, decoded as it is, never
  re-encoded, luma, resized to the input size, 8-bit, each pixel mapped as the settings
  header's kPixelToInput);
- slim_eval: the TFLM guide's evaluation protocol (stored as the dataset stores it,
  --max-image-side, as JPEG; central 87.5% crop, resize, grayscale, scale to [-1, 1]).
A .tflite then runs int8 in TensorFlow Lite Micro's interpreter, on the input quantized
with the model's scale and zero point: with the device preprocessing, what the
microcontroller computes for that picture. A checkpoint (model.ckpt-N, its .index, or a
train dir for its newest) runs in float with the weights it ships (--eval-weights).

A model this workflow made needs no flags: its model.json (beside the .tflite, above the
train dir) gives the class names, the stored image size, the recipe and the operating
point. Flags given override it; without a model.json they default to the TFLM guide's recipe,
192 px and the class names 0 and 1.

The label is decided as the settings header's Detect does, with model.json's operating
point: class 1 when its score is at or above the unsure band's top, class 0 below its
bottom, "unsure" between. Without an operating point, or with --argmax, the label is the
class of the highest score.

Prints one line per image: path, label and every class's score; --json prints one JSON
object per line instead ({"path", "label", "scores": {class: score}}). Folders are searched
at any depth, in sorted order, for the files Pillow identifies as images by their content,
whatever their names (vww/data/folders.py); the other files are skipped with a warning saying
why. An image that cannot be read (in a folder: also a broken link, or a file named like an
image that is not one) is reported on stderr and the exit status is 1; the others are still
classified. A model or labels file that cannot be used stops it with one line saying why.

Examples:
  python scripts/predict.py results/person_detection/person_detection.tflite photos/
  python scripts/predict.py results/person_detection/train me.jpg --json
  python scripts/predict.py other.tflite photos/ --labels labels.txt --preprocessing slim_eval
"""

import json
import logging
import sys
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf

from vww.base.cli import InputError, cli_parser, main_guard
from vww.data.folders import scan_folder
from vww.data.images import UnreadableImageError
from vww.data.labels import class_names
from vww.export import description as model_json
from vww.export import micro
from vww.export.graph import input_shape
from vww.export.litert import dequantize, input_int8, io_quantization, load_classifier
from vww.model import mobilenet_v1, recipe, registry
from vww.train.checkpoints import check_intact, checkpoint_names, misfits, newest_checkpoint

tf1 = tf.compat.v1
DEFAULT_MAX_IMAGE_SIDE = 192  # config.yaml's dataset.max_image_side


def image_files(paths):
    """(images, skipped) of `paths`: files as given, folders searched at any depth
    (vww.data.folders.scan_folder: sorted, skipped files as (path, reason))."""
    images, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            folder_images, folder_skipped = scan_folder(path)
            images += folder_images
            skipped += folder_skipped
        else:
            images.append(path)
    return images, skipped


def model_input(path, settings, max_image_side, kind):
    """An image file as the model's float input [1, H, W, C], preprocessed as `kind`."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UnreadableImageError(f"{path}: {err.strerror}") from err
    image = registry.EVAL_PREPROCESSINGS[kind].picture(
        data, str(path), settings["image_size"], settings["grayscale"], max_image_side)
    return image.numpy()[np.newaxis]


def decision_bounds(description):
    """(low, high): the probabilities of the operating point's unsure band, dequantized as
    the .tflite's scores are, so comparing them decides as the header's Detect does on the
    int8 scores."""
    point = description["operating_point"]
    quantization = description["tflite_output_quantization"]
    return tuple(dequantize(np.array([point["unsure_low"], point["unsure_high"]], np.int8),
                            quantization["scale"], quantization["zero_point"]))


def label_of(scores, names, bounds):
    """The label of an image's class probabilities: argmax without `bounds`, else class 1
    at or above the high bound, class 0 below the low one, "unsure" between."""
    if bounds is None:
        return names[int(np.argmax(scores))]
    low, high = bounds
    if scores[1] >= high:
        return names[1]
    return names[0] if scores[1] < low else "unsure"


class TfliteModel:
    """An int8 .tflite run in TFLM; input size and channels come from the model."""

    def __init__(self, path):
        model, self.litert = load_classifier(path)  # LiteRT: for the quantization only
        try:
            self.tflm = micro.load(model)
        except micro.MicroError as err:
            raise InputError(path, err) from err
        _, height, _, channels = self.litert.get_input_details()[0]["shape"]
        self.settings = {"image_size": int(height), "grayscale": int(channels) == 1}

    def scores(self, image):
        _, (scale, zero_point) = io_quantization(self.litert)
        output = micro.run(self.tflm, input_int8(self.litert, image))
        return dequantize(output, scale, zero_point)


def checkpoint_prefix(path):
    """The checkpoint a path names: a prefix, its .index, or a train dir (its newest)."""
    path = Path(path)
    if path.is_dir():
        latest = newest_checkpoint(path)
        if latest is None:
            raise InputError(path, "no checkpoint in this folder")
        return latest
    prefix = str(path).removesuffix(".index")
    if not Path(f"{prefix}.index").is_file():
        raise InputError(path, "not a .tflite nor a checkpoint (no .index file)" if path.exists()
                         else "No such file or directory")
    return prefix


class CheckpointModel:
    """A checkpoint's shipped weights in the float inference graph."""

    def __init__(self, path, settings):
        prefix = checkpoint_prefix(path)
        self.settings = settings
        graph = tf.Graph()
        with graph.as_default():
            self.images = tf1.placeholder(tf.float32, input_shape(settings))
            _, end_points = mobilenet_v1.build(self.images, settings, is_training=False)
            self.predictions = end_points["Predictions"]
            names = checkpoint_names(settings["eval_weights"])
            # A Saver fails on a damaged or another model's checkpoint with pages of text.
            check_intact(prefix)
            problems = misfits(prefix, names)
            if problems:
                raise InputError(path, "not a checkpoint of the model the recipe flags describe "
                                       f"({len(problems)} misfits, first: {problems[0]})")
            saver = tf1.train.Saver(names)
            self.sess = tf1.Session(graph=graph)
            saver.restore(self.sess, prefix)

    def scores(self, image):
        return self.sess.run(self.predictions, {self.images: image})[0]


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("model", help="int8 .tflite, or checkpoint prefix / .index / train dir")
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--labels", help="labels.txt of the dataset (default: model.json's "
                                          "class names, else 0, 1)")
    parser.add_argument("--max-image-side", type=int, default=DEFAULT_MAX_IMAGE_SIDE,
                        help="downscale as the dataset stored its images (default: "
                             "model.json's, else %(default)s; 0: as they are)")
    parser.add_argument("--preprocessing", choices=sorted(registry.EVAL_PREPROCESSINGS),
                        default=registry.DEVICE_PREPROCESSING,
                        help="; ".join(f"{name}: {entry.help}" for name, entry
                                       in sorted(registry.EVAL_PREPROCESSINGS.items()))
                             + " (default: %(default)s)")
    parser.add_argument("--argmax", action="store_true",
                        help="label by the highest score, not by model.json's operating point")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    description = model_json.set_defaults_from(parser, argv, "model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    if args.labels:
        names = class_names(args.labels)
    else:
        names = description["class_names"] if description else ["0", "1"]
    if args.model.endswith(".tflite"):
        model = TfliteModel(args.model)
    else:
        model = CheckpointModel(args.model, recipe.from_args(args, recipe.INFERENCE_KEYS))
    use_point = description and "operating_point" in description and not args.argmax
    bounds = decision_bounds(description) if use_point else None
    files, skipped = image_files(args.images)
    for path, reason in skipped:
        logging.warning("skipped %s: %s", path, reason)
    if not files:
        sys.exit(f"error: {' '.join(args.images)}: no image (no file Pillow reads as one)")
    failed = 0
    for path in files:
        try:
            image = model_input(path, model.settings, args.max_image_side or None,
                                args.preprocessing)
        except UnreadableImageError as err:
            logging.error("cannot read %s", err)
            failed += 1
            continue
        scores = model.scores(image)
        result = {"path": str(path), "label": label_of(scores, names, bounds),
                  "scores": {name: float(s) for name, s in zip(names, scores)}}
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print("\t".join([result["path"], result["label"],
                             *(f"{n}={s:.4f}" for n, s in result["scores"].items())]),
                  flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main_guard(main)
