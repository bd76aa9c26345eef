"""Finding a train dir's checkpoints; restoring their raw weights or moving average."""

import re
from pathlib import Path

import tensorflow as tf

from vww.training import MOVING_AVERAGE_NAME

tf1 = tf.compat.v1
WEIGHTS = ("ema", "raw")
# What a fine-tuning run takes from its starting checkpoint: every layer, or all but the
# classifier (slim's --checkpoint_exclude_scopes=MobilenetV1/Logits).
INIT_SCOPES = ("all", "all_but_logits")
LOGITS_SCOPE = "MobilenetV1/Logits/"


def newest_checkpoint(train_dir):
    """The prefix (model.ckpt-STEP) of the highest-step checkpoint in `train_dir`, or None.

    Found from the files themselves, not TF's `checkpoint` state file: that names the last
    one saved, which Snakemake deletes (as an incomplete output) before it reruns the
    job, and TF then reports no checkpoint at all although the earlier ones are there.
    """
    steps = [int(m[1]) for p in Path(train_dir).glob("model.ckpt-*.index")
             if (m := re.fullmatch(r"model\.ckpt-(\d+)\.index", p.name))]
    return str(Path(train_dir) / f"model.ckpt-{max(steps)}") if steps else None


def checkpoint_step(checkpoint):
    """The global step stored in a checkpoint."""
    return int(tf.train.load_variable(checkpoint, "global_step"))


def checkpoint_key(variable_name, weights):
    """The checkpoint entry holding `weights` ('ema' or 'raw') of a variable."""
    return variable_name if weights == "raw" else f"{variable_name}/{MOVING_AVERAGE_NAME}"


def checkpoint_names(weights, variables=None):
    """{checkpoint name: variable} loading `weights` ('ema' or 'raw') into model variables
    (default: all).

    'ema' maps every model variable (batch-norm statistics included, as slim does) to its
    moving-average shadow in the checkpoint. The shadow's name is spelled out: asking an
    ExponentialMovingAverage for it in a graph that has shadows already (a fine-tuning
    run's) would give a uniquified "..._1".
    """
    variables = tf1.model_variables() if variables is None else variables
    return {checkpoint_key(v.op.name, weights): v for v in variables}


def weights_saver(weights, variables=None):
    """A Saver that loads `weights` ('ema' or 'raw') into model variables (default: all)."""
    return tf1.train.Saver(checkpoint_names(weights, variables))


def misfits(checkpoint, names):
    """What keeps `checkpoint` from loading into {checkpoint name: variable}: a list of
    missing names and shape mismatches (a Saver would load another shape silently)."""
    shapes = dict(tf.train.list_variables(str(checkpoint)))
    problems = []
    for name, variable in sorted(names.items()):
        if name not in shapes:
            problems.append(f"{name} is not in it")
        elif list(shapes[name]) != variable.shape.as_list():
            problems.append(f"{name} is {shapes[name]}, the model's {variable.shape.as_list()}")
    return problems


def init_variables(scope):
    """The model variables a fine-tuning run restores for `scope` (one of INIT_SCOPES)."""
    variables = tf1.model_variables()
    if scope == "all_but_logits":
        variables = [v for v in variables if not v.op.name.startswith(LOGITS_SCOPE)]
    return variables
