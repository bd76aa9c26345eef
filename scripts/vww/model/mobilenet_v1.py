"""MobileNet v1 in tf-slim, layer for layer and name for name as slim's nets/mobilenet_v1.

Built in TF1 graph mode (tf.compat.v1); checkpoints are interchangeable with slim's:
the same scopes (MobilenetV1/Conv2d_0, MobilenetV1/Conv2d_1_depthwise, ...,
MobilenetV1/Logits/Conv2d_1c_1x1) and variables.
"""

import importlib
import sys

import tensorflow as tf


def _import_tf_slim():
    """Import tf_slim 1.1.0 on TF >= 2.13.

    Its batch norm loads `tf_keras.legacy_tf_layers.normalization`, which tf-keras now
    ships as `tf_keras.src.legacy_tf_layers.normalization` (the fix upstream was never
    released), so the old name is pointed at the new module.
    """
    for name in ("legacy_tf_layers", "legacy_tf_layers.normalization"):
        if f"tf_keras.{name}" not in sys.modules:
            sys.modules[f"tf_keras.{name}"] = importlib.import_module(f"tf_keras.src.{name}")
    return importlib.import_module("tf_slim")


slim = _import_tf_slim()
tf1 = tf.compat.v1

# (kind, stride, depth at width 1.0) of slim's MOBILENETV1_CONV_DEFS, all 3x3.
CONV_DEFS = (
    ("conv", 2, 32),
    ("sep", 1, 64),
    ("sep", 2, 128),
    ("sep", 1, 128),
    ("sep", 2, 256),
    ("sep", 1, 256),
    ("sep", 2, 512),
    ("sep", 1, 512),
    ("sep", 1, 512),
    ("sep", 1, 512),
    ("sep", 1, 512),
    ("sep", 1, 512),
    ("sep", 2, 1024),
    ("sep", 1, 1024),
)
MIN_DEPTH = 8
SCOPE = "MobilenetV1"


def arg_scope(is_training, weight_decay=0.00004, stddev=0.09, batch_norm_decay=0.9997,
              batch_norm_epsilon=0.001):
    """slim's mobilenet_v1_arg_scope: ReLU6, batch norm, L2 on the non-depthwise weights."""
    batch_norm_params = {
        "center": True,
        "scale": True,
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": tf1.GraphKeys.UPDATE_OPS,
        "is_training": is_training,
    }
    with slim.arg_scope(
        [slim.conv2d, slim.separable_conv2d],
        weights_initializer=tf1.truncated_normal_initializer(stddev=stddev),
        activation_fn=tf.nn.relu6,
        normalizer_fn=slim.batch_norm,
    ), slim.arg_scope([slim.batch_norm], **batch_norm_params), slim.arg_scope(
        [slim.conv2d], weights_regularizer=slim.l2_regularizer(weight_decay)
    ), slim.arg_scope([slim.separable_conv2d], weights_regularizer=None) as scope:
        return scope


def _pool_kernel(net):
    """slim's reduced kernel for small inputs: the 7x7 pool shrinks to the feature map."""
    height, width = net.shape[1:3]
    return [min(height, 7), min(width, 7)]


def dropout(net, keep_prob, seed, scope):
    """slim.dropout in training mode, its mask drawn statelessly from `seed` (an int
    tensor [2]): a step's mask then depends on that step alone, not on how many steps
    this process ran before, so a resumed run draws what an uninterrupted one did."""
    with tf1.name_scope(scope):
        if keep_prob >= 1.0:
            return tf.identity(net)
        return tf.nn.experimental.stateless_dropout(net, rate=1.0 - keep_prob, seed=seed)


def mobilenet_v1(images, num_classes=2, depth_multiplier=0.25, dropout_keep_prob=0.999,
                 is_training=False, dropout_seed=None):
    """Logits [batch, num_classes] and slim's end points for `images` [batch, H, W, C].

    Training (`is_training`) needs `dropout_seed`, the stateless seed of the step's
    dropout mask (see dropout).
    """
    if is_training and dropout_seed is None:
        raise ValueError("a training graph needs a dropout_seed")
    end_points = {}
    with tf1.variable_scope(SCOPE, values=[images]):
        with slim.arg_scope([slim.batch_norm], is_training=is_training), \
                slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding="SAME"):
            net = images
            for i, (kind, stride, depth) in enumerate(CONV_DEFS):
                depth = max(int(depth * depth_multiplier), MIN_DEPTH)
                if kind == "conv":
                    name = f"Conv2d_{i}"
                    net = slim.conv2d(net, depth, [3, 3], stride=stride, scope=name)
                else:
                    name = f"Conv2d_{i}_depthwise"
                    net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                                stride=stride, scope=name)
                    end_points[name] = net
                    name = f"Conv2d_{i}_pointwise"
                    net = slim.conv2d(net, depth, [1, 1], stride=1, scope=name)
                end_points[name] = net
            with tf1.variable_scope("Logits"):
                net = slim.avg_pool2d(net, _pool_kernel(net), padding="VALID",
                                      scope="AvgPool_1a")
                end_points["AvgPool_1a"] = net
                if is_training:
                    net = dropout(net, dropout_keep_prob, dropout_seed, "Dropout_1b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_1c_1x1")
                logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
            end_points["Logits"] = logits
            end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits, end_points


def build(images, model, is_training, dropout_seed=None):
    """MobileNet v1 under the arg scope of a model's settings (config.yaml `models:`);
    training needs `dropout_seed` (see mobilenet_v1)."""
    with slim.arg_scope(arg_scope(is_training, weight_decay=model["weight_decay"],
                                  batch_norm_decay=model["batch_norm_decay"])):
        return mobilenet_v1(images, num_classes=2, depth_multiplier=model["depth_multiplier"],
                            dropout_keep_prob=model["dropout_keep_prob"],
                            is_training=is_training, dropout_seed=dropout_seed)
