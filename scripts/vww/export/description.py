"""model.json: what running a trained model of this workflow needs, kept beside the model.

describe_model.py writes it into the model's folder (results/<model>/model.json): class
names, stored image size, inference recipe, the .tflite's quantization and the model files,
relative to it. predict.py and evaluate.py take their defaults from it, so a model of this
workflow needs no repeated flags; flags given still win.
"""

from pathlib import Path

from vww.data.coco import load_json

FILE_NAME = "model.json"


def find(model):
    """The model.json describing `model` (a .tflite, or a checkpoint, its .index or train
    dir) when the workflow made it: beside the .tflite or above the train dir, naming this
    very file or train dir. None for any other model."""
    path = Path(model).resolve()
    is_tflite = path.suffix == ".tflite"
    train_dir = path if path.is_dir() else path.parent
    json_path = (path.parent if is_tflite else train_dir.parent) / FILE_NAME
    if not json_path.is_file():
        return None
    description = load_json(json_path)
    named = (json_path.parent / description["tflite" if is_tflite else "checkpoint"]).resolve()
    return description if (named == path if is_tflite else named.parent == train_dir) else None


def set_defaults_from(parser, argv, model_dest):
    """Make the model.json of the model named by `argv` (argument `model_dest`) the defaults
    of `parser`'s recipe flags and --max-image-side (a CLI without that flag ignores it);
    return the model.json (None when the model has none)."""
    description = find(getattr(parser.parse_known_args(argv)[0], model_dest))
    if description:
        parser.set_defaults(max_image_side=description["max_image_side"] or 0,
                            **description["recipe"])
    return description
