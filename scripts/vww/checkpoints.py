"""Restoring a checkpoint's raw weights or their moving average into an inference graph."""

import tensorflow as tf

from vww.training import moving_average

tf1 = tf.compat.v1
WEIGHTS = ("ema", "raw")


def checkpoint_step(checkpoint):
    """The global step stored in a checkpoint."""
    return int(tf.train.load_variable(checkpoint, "global_step"))


def weights_saver(weights, settings):
    """A Saver that loads `weights` ('ema' or 'raw') into the graph's model variables.

    'ema' maps every model variable (batch-norm statistics included, as slim does) to its
    ExponentialMovingAverage shadow in the checkpoint.
    """
    variables = tf1.model_variables()
    if weights == "raw":
        return tf1.train.Saver(variables)
    ema = moving_average(settings, tf1.train.get_or_create_global_step())
    return tf1.train.Saver({ema.average_name(v): v for v in variables})
