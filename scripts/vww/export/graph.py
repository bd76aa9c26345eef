"""The inference graph (GraphDef) and its freezing with a checkpoint's shipped weights."""

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from vww.base.cli import InputError
from vww.model import mobilenet_v1
from vww.train.checkpoints import checkpoint_key

tf1 = tf.compat.v1
INPUT_NODE = "input"
OUTPUT_NODE = f"{mobilenet_v1.SCOPE}/Predictions"


def input_shape(settings):
    channels = 1 if settings["grayscale"] else 3
    return [1, settings["image_size"], settings["image_size"], channels]


def inference_graph_def(settings):
    """The eval-mode model from float `input` [1, H, W, C] to the softmax, no weights.

    Only the nodes the output needs are kept (no initializers, no savers), as slim's
    export_inference_graph gives.
    """
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, input_shape(settings), name=INPUT_NODE)
        mobilenet_v1.build(images, settings, is_training=False)
    return tf1.graph_util.extract_sub_graph(graph.as_graph_def(), [OUTPUT_NODE])


class FreezeError(ValueError):
    """The checkpoint does not hold the graph's variables (another model, wrong path)."""


def freeze(graph_def, checkpoint, weights):
    """Replace every variable of `graph_def` by a constant holding its checkpoint value.

    weights='ema' takes each variable's moving average (the checkpoint's
    '<name>/ExponentialMovingAverage'), 'raw' the variable itself: the same sets the
    evaluation restores, so the frozen graph computes what eval measured.
    """
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
    except (ValueError, tf.errors.OpError) as err:
        raise FreezeError(f"cannot read checkpoint {checkpoint}: {err}") from err
    frozen = tf1.GraphDef()
    frozen.versions.CopyFrom(graph_def.versions)
    for node in graph_def.node:
        if node.op == "VarHandleOp":
            key = checkpoint_key(node.name, weights)
            if not reader.has_tensor(key):
                raise FreezeError(f"{checkpoint} has no {key!r}: not a checkpoint of this model")
            value = reader.get_tensor(key)
            shape = tf.TensorShape(node.attr["shape"].shape)
            if not shape.is_compatible_with(value.shape):
                raise FreezeError(f"{checkpoint}: {key!r} has shape {list(value.shape)}, the "
                                  f"graph wants {shape.as_list()}: another model's checkpoint")
            constant = frozen.node.add(name=node.name, op="Const", device=node.device)
            constant.attr["dtype"].type = node.attr["dtype"].type
            constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        elif node.op == "ReadVariableOp":
            identity = frozen.node.add(name=node.name, op="Identity", device=node.device)
            identity.input.extend(node.input)
            identity.attr["T"].type = node.attr["dtype"].type
        else:
            frozen.node.add().CopyFrom(node)
    return frozen


def _node_name(tensor):
    """The node of a node input ("name" or "name:0")."""
    return tensor.split(":")[0]


def _constant(nodes, name):
    """The value of the Const behind `name` and the Identity nodes in front of it."""
    node = nodes[_node_name(name)]
    while node.op == "Identity":
        node = nodes[_node_name(node.input[0])]
    return tf.make_ndarray(node.attr["value"].tensor)


def fold_batch_norms(graph_def):
    """A copy of the frozen `graph_def` whose inference batch norms are folded into the
    convolutions before them: weights x gamma / sqrt(variance + epsilon), and a BiasAdd
    (under the batch norm's name) adding beta - mean x that factor.

    The TFLite converter folds them itself, through TensorFlow's Rsqrt kernel (an
    approximate reciprocal square root instruction refined once), whose bits depend on
    the CPU: the same graph gave another .tflite on an emulated AMD EPYC than on a Xeon.
    Here the factors are computed in float64 with IEEE square root and division, then
    rounded to float32 once: the same bytes on any CPU.
    """
    nodes = {node.name: node for node in graph_def.node}
    folded = tf1.GraphDef()
    folded.CopyFrom(graph_def)
    by_name = {node.name: node for node in folded.node}
    for norm in [n for n in graph_def.node if n.op == "FusedBatchNormV3"]:
        conv = nodes[_node_name(norm.input[0])]
        gamma, beta, mean, variance = (_constant(nodes, name).astype(np.float64)
                                       for name in norm.input[1:5])
        factor = gamma / np.sqrt(variance + norm.attr["epsilon"].f)
        weights = _constant(nodes, conv.input[1]).astype(np.float64)
        # Output channels are the last axis of a Conv2D kernel [h, w, in, out]; a
        # depthwise kernel [h, w, in, 1] has them on its input axis (multiplier 1).
        axis = -1 if conv.op == "Conv2D" else 2
        shape = [1] * weights.ndim
        shape[axis] = -1
        kernel = by_name[_node_name(conv.input[1])]
        kernel.op = "Const"
        del kernel.input[:]
        kernel.attr.clear()
        kernel.attr["dtype"].type = tf.float32.as_datatype_enum
        kernel.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(
            (weights * factor.reshape(shape)).astype(np.float32)))
        bias = folded.node.add(name=f"{norm.name}/folded_bias", op="Const")
        bias.attr["dtype"].type = tf.float32.as_datatype_enum
        bias.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(
            (beta - mean * factor).astype(np.float32)))
        add = by_name[norm.name]
        add.op = "BiasAdd"
        del add.input[:]
        add.input.extend([norm.input[0], bias.name])
        add.attr.clear()
        add.attr["T"].type = tf.float32.as_datatype_enum
        add.attr["data_format"].s = norm.attr["data_format"].s
    return tf1.graph_util.extract_sub_graph(folded, [OUTPUT_NODE])


def serialize(graph_def):
    """Deterministic bytes of a GraphDef."""
    return graph_def.SerializeToString(deterministic=True)


def load_graph_def(path):
    """The GraphDef in the file `path`; InputError names the file when it is not one."""
    graph_def = tf1.GraphDef()
    with open(path, "rb") as f:
        data = f.read()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as err:
        raise InputError(path, "not a GraphDef (.pb)") from err
    return graph_def
