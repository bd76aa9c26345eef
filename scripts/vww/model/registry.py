"""The recipe's choices, as TF-Slim's factories: each is a table from the name the config and
the CLIs use to the function that does it. A new choice is one function and one entry here;
the recipe's choices (vww.model.recipe.CHOICES), the CLIs' --choices and the settings
header's pixel table follow from these tables, and a test keeps the config schema's enums
equal to them (tests/test_registry.py).
"""

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from vww.data.images import rgb_pixels, tf_jpeg
from vww.model import metrics, preprocessing

# What box the random training crop must cover a tenth of: fn(stored boxes [N, 4]) -> the
# boxes slim's distorted-bounding-box crop gets.
TRAIN_CROPS = {
    "whole_image": preprocessing.whole_image_boxes,  # the TFLM guide's
    "person_boxes": preprocessing.object_boxes,
}


class EvalPreprocessing(NamedTuple):
    """How an image becomes the model's float input [size, size, C] in [-1, 1] when the
    model is evaluated or used."""
    # A record's stored JPEG: fn(jpeg, size, grayscale).
    stored: Callable
    # A picture file's bytes, as predict reads it: fn(data, name, size, grayscale,
    # max_image_side).
    picture: Callable
    # The board's 8-bit camera pixel -> the model's input, when this preprocessing is what
    # a board computes (the settings header's kPixelToInput table); else None.
    frame_input: Callable = None
    help: str = ""


def _stored_as_dataset(preprocess):
    """A picture stored as the dataset stores it (a JPEG at most max_image_side), then
    `preprocess`ed as a record's image."""
    def picture(data, name, size, grayscale, max_image_side):
        return preprocess(tf.constant(tf_jpeg(data, name, max_image_side).jpeg), size,
                          grayscale)
    return picture


def _device_picture(data, name, size, grayscale, max_image_side):
    """The whole picture as decoded, never stored or cropped: what a camera frames."""
    return preprocessing.device_image(tf.constant(rgb_pixels(data, name)), size, grayscale)


EVAL_PREPROCESSINGS = {
    "slim_eval": EvalPreprocessing(
        stored=preprocessing.eval_image, picture=_stored_as_dataset(preprocessing.eval_image),
        help="slim's evaluation protocol, the TFLM guide's: the central 87.5%%, resized"),
    "device": EvalPreprocessing(
        stored=preprocessing.device_stored_image, picture=_device_picture,
        frame_input=preprocessing.frame_input,
        help="the board's: the whole frame, 8-bit, no crop"),
}
# The preprocessing the operating point is chosen under and the settings header serves.
DEVICE_PREPROCESSING = "device"

# How the operating threshold is chosen on val: metrics' own table (metrics.choose_threshold).
OPERATING_RULES = metrics.OPERATING_RULES

# The recipe's entries whose values are a registry's names (vww.model.recipe.choices).
RECIPE_CHOICES = {"crop": TRAIN_CROPS}
