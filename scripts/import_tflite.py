#!/usr/bin/env python3
"""Import a full-int8 .tflite of the recipe's MobileNet v1 into a checkpoint of our network.

The weights are dequantized (per channel), and every batch norm the converter folded into
its convolution comes back with parameters under which the float graph computes what the
int8 graph approximates; their statistics are measured on --num-images of --records
(evaluation preprocessing), so training mode (batch statistics) starts from the same
function. The moving averages (ema weights) hold the same values; global_step is 0. The
result starts a fine-tuning run (train.py --init-checkpoint) or is evaluated and frozen as
any checkpoint. See vww/export/importer.py for the arithmetic.

Any converter's model imports (ours, or TOCO's such as TFLM's person_detect.tflite):
layers are matched by order, kind, stride and shape, not by name. A model of another
architecture fails, naming its first tensor that does not fit the recipe.

Example (TFLM's published person model, fine-tuned on a folder's images):
  python scripts/import_tflite.py --tflite person_detect.tflite \\
      --records results/datasets/<dataset>/records/train.record-* \\
      --output results/face_detection/init/model.ckpt-0
"""

import logging

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.export.importer import (
    batch_norm_values,
    convolution_statistics,
    folded_values,
    match_layers,
    network_layers,
    tflite_layers,
    write_checkpoint,
)
from vww.model import recipe
from vww.model.dataset import add_records_argument, eval_examples, record_files


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--tflite", required=True, help="full-int8 .tflite to import")
    add_records_argument(parser, "train")
    parser.add_argument("--num-images", type=int, default=250,
                        help="images of --records the batch norms' statistics are measured on "
                             "(%(default)s; config: calibration_images)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of TF's ops (0: one per core)")
    parser.add_argument("--output", required=True,
                        help="checkpoint prefix to write (…/model.ckpt-0)")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    args = parse_logged_args(parser, argv)
    if args.num_images < 1:
        parser.error("--num-images must be >= 1")
    settings = recipe.from_args(args, recipe.INFERENCE_KEYS)

    try:
        with open(args.tflite, "rb") as model_file:
            model = model_file.read()
    except OSError as err:
        raise InputError(args.tflite, err.strerror) from err
    layers, ops, image_shape = tflite_layers(model, args.tflite)
    matched = match_layers(layers, network_layers(settings), image_shape, settings,
                           args.tflite)
    logging.info("%s: %d operators (%d convolutions) matched MobileNet v1 layer by layer",
                 args.tflite, len(ops), len(matched))
    values = folded_values(matched)
    # Read eagerly, before the statistics' graph exists (tf.data iterates in eager mode).
    images = [example.image for example in eval_examples(
        record_files(args.records, "train"), settings, args.num_images)]
    statistics = convolution_statistics(values, matched, settings, images, args.threads)
    values.update(batch_norm_values(matched, statistics))
    write_checkpoint(values, args.output)
    logging.info("wrote %s: %d variables and their moving averages (batch-norm statistics "
                 "from %d images)", args.output, len(values), len(images))


if __name__ == "__main__":
    main_guard(main)
