"""The training recipe: every knob of a model, its default (the TFLM guide's) and what it does.

The CLIs build their flags from this table, and the workflow passes a model's settings
from config.yaml as those flags; a test keeps schemas/config.schema.yaml's defaults equal
to these.
"""

import argparse

# name: (default, help). Defaults are the TFLM guide's flags plus slim's own defaults.
RECIPE = {
    "image_size": (96, "input height and width in pixels"),
    "grayscale": (True, "one input channel (grayscale) instead of RGB"),
    "depth_multiplier": (0.25, "MobileNet v1 width multiplier"),
    "batch_size": (96, "training batch size"),
    "steps": (1000000, "training steps"),
    "learning_rate": (0.045, "initial learning rate"),
    "learning_rate_decay_factor": (0.98, "learning rate factor per decay period"),
    "num_epochs_per_decay": (2.5, "epochs per learning-rate decay (staircase)"),
    "label_smoothing": (0.1, "label smoothing of the cross entropy"),
    "weight_decay": (0.00004, "L2 weight decay of the convolution weights"),
    "batch_norm_decay": (0.9997, "decay of the batch-norm moving mean and variance"),
    "moving_average_decay": (0.9999, "decay of the exponential moving average of weights"),
    "rmsprop_decay": (0.9, "RMSProp decay"),
    "rmsprop_momentum": (0.9, "RMSProp momentum"),
    "rmsprop_epsilon": (1.0, "RMSProp epsilon"),
    "dropout_keep_prob": (0.999, "dropout keep probability before the logits"),
    "seed": (0, "seed of every random choice (shuffling, augmentation, initial weights)"),
    "deterministic": (True, "bit-reproducible training on CPU (TF op determinism)"),
    "shuffle_buffer": (2048, "records in the training shuffle buffer"),
    "crop": ("whole_image", "what the random training crop must cover a tenth of: "
                            "whole_image (the TFLM guide's) or person_boxes (a person box)"),
    "cache_images": ("auto", "keep the decoded training images in memory after the first "
                             "epoch (RAM: train records x stored height x width x 3 bytes): "
                             "true, false, or auto: when they fit the job's memory"),
    "eval_weights": ("ema", "weights the model ships with: ema (moving average) or raw"),
    "log_interval_steps": (100, "steps between training log lines"),
    "checkpoint_interval_s": (600, "seconds between checkpoints"),
    "summary_interval_s": (300, "seconds between TensorBoard summaries"),
}
# The values of the entries that are not a registry's (vww.model.registry).
CHOICES = {"eval_weights": ("ema", "raw"), "cache_images": ("auto", "true", "false")}
# What turns an image into the model's input.
INPUT_KEYS = ("image_size", "grayscale")
# What running a trained model needs: its architecture, input and shipped weights.
INFERENCE_KEYS = ("image_size", "grayscale", "depth_multiplier", "weight_decay",
                  "batch_norm_decay", "dropout_keep_prob", "moving_average_decay",
                  "eval_weights")


def choices(name):
    """The values recipe entry `name` takes, or None for any: its registry's names
    (vww.model.registry.RECIPE_CHOICES, imported here and only here: it loads TensorFlow,
    which the workflow's parse, using this module, need not), else CHOICES'."""
    from vww.model import registry

    table = registry.RECIPE_CHOICES.get(name)
    return tuple(table) if table else CHOICES.get(name)


def add_arguments(parser, names=None):
    """Add a --flag for each recipe entry (all, or those in `names`)."""
    group = parser.add_argument_group("recipe (defaults: the TFLM guide's)")
    for name in names or RECIPE:
        default, help_text = RECIPE[name]
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                               help=help_text)
        else:
            group.add_argument(flag, type=type(default), default=default,
                               choices=choices(name), help=f"{help_text} (%(default)s)")


def from_args(args, names=None):
    """The recipe entries of parsed arguments, as a dict."""
    return {name: getattr(args, name) for name in names or RECIPE}


def as_flags(settings, names=None):
    """Command-line flags for the recipe entries (all, or those in `names`) of settings."""
    flags = []
    for name, value in sorted(settings.items()):
        if name not in (names or RECIPE):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(RECIPE[name][0], bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:  # YAML's true/false for a choice (cache_images) as its flag spells them
            flags.append(f"{flag} {str(value).lower() if isinstance(value, bool) else value}")
    return " ".join(flags)
