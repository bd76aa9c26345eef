#!/usr/bin/env python3
"""Write model.json: what running a trained model of this workflow needs, beside the model.

predict.py finds it next to a .tflite, or above a checkpoint's train folder, so
`predict.py MODEL IMAGES` needs no flags for a model this workflow made. It holds the
class names (from the dataset's labels.txt), the stored image size of the dataset
(max_image_side: predict stores an image the same way before the eval preprocessing), the
recipe that builds the inference graph and the weights the checkpoint ships
(eval_weights), the .tflite's int8 input and output quantization (real value =
scale x (int8 - zero_point)), the operating point evaluate_tflite.py chose (the int8
person-score threshold and unsure band, which predict applies), and the model files,
relative to model.json. When no threshold met its rule (a weak model), there is no
operating_point, "undefined" says why, and predict and the settings header take the argmax.

Example:
  python scripts/describe_model.py \\
      --labels results/datasets/data_coco-person-0.005-192px/labels.txt \\
      --tflite results/person_detection/person_detection.tflite \\
      --tflite-eval results/person_detection/tflite_eval.json \\
      --checkpoint results/person_detection/train/model.ckpt-1000000 \\
      --max-image-side 192 --output results/person_detection/model.json
"""

import os
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import cli_parser, main_guard
from vww.base.files import write_json
from vww.data.coco import load_json
from vww.data.labels import class_names
from vww.export.litert import io_quantization, load_classifier
from vww.model import recipe


def describe(labels, tflite, tflite_eval, checkpoint, max_image_side, settings, output):
    """model.json's content for a model made with `settings` (its INFERENCE_KEYS)."""
    _, runner = load_classifier(tflite, settings)
    (in_scale, in_zero), (out_scale, out_zero) = io_quantization(runner)
    folder = Path(output).parent
    point = load_json(tflite_eval)["operating_point"]
    return {
        "class_names": class_names(labels),
        "max_image_side": max_image_side,
        "recipe": {key: settings[key] for key in recipe.INFERENCE_KEYS},
        "tflite": os.path.relpath(tflite, folder),
        "checkpoint": os.path.relpath(checkpoint, folder),
        "tflite_input_quantization": {"scale": float(in_scale), "zero_point": int(in_zero)},
        "tflite_output_quantization": {"scale": float(out_scale), "zero_point": int(out_zero)},
        # Absent rather than null: predict.py applies any operating_point it finds.
        **({"operating_point": point} if point["threshold"] is not None
           else {"undefined": {"operating_point": point["undefined"]["threshold"]}}),
    }


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--labels", required=True, help="the dataset's labels.txt")
    parser.add_argument("--tflite", required=True, help="the model's int8 .tflite")
    parser.add_argument("--tflite-eval", required=True,
                        help="evaluate_tflite.py's report of it (its operating point)")
    parser.add_argument("--checkpoint", required=True,
                        help="the final checkpoint prefix (model.ckpt-N)")
    parser.add_argument("--max-image-side", type=int, default=0,
                        help="longer side of the dataset's stored images (0: as they are)")
    parser.add_argument("--output", required=True, help="model.json to write")
    recipe.add_arguments(parser, recipe.INFERENCE_KEYS)
    args = parser.parse_args(argv)
    settings = recipe.from_args(args, recipe.INFERENCE_KEYS)
    write_json(args.output, describe(args.labels, args.tflite, args.tflite_eval, args.checkpoint,
                                     args.max_image_side or None, settings, args.output))


if __name__ == "__main__":
    main_guard(main)
