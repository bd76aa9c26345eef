"""An int8 .tflite of the recipe's MobileNet v1 as a checkpoint of our network.

The converter folded each batch norm into its convolution: the int8 graph computes
relu6(conv(x, W) + b) with W and b quantized (W per output channel). The import dequantizes
W and b and gives every batch norm the parameters under which our float graph computes
exactly that in eval mode:

    moving_mean m, moving_variance v: the statistics of conv(x, W) over images
    gamma = sqrt(v + eps), beta = b + m
    => gamma * (conv - m) / sqrt(v + eps) + beta = conv + b

Any (m, v) would give that in eval mode; the measured ones also make training mode (batch
statistics) start from the same function, so fine-tuning starts where the model is. The
moving averages of the weights (the `ema` weights) hold the same values.

Layers are matched in execution order (the first convolution, 13 depthwise-pointwise
pairs, the classifier), by kind, stride and weight shape; names are not used, so a model
converted by any tool imports. TOCO, which converted TFLM's person_detect.tflite, stored
the first convolution (one input channel) as a depthwise one with multiplier 8: the same
arithmetic, imported as the convolution it is.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from vww.base.cli import InputError
from vww.base.sessions import session_config
from vww.export.graph import input_shape
from vww.model import mobilenet_v1
from vww.train.checkpoints import record_checkpoint
from vww.train.training import MOVING_AVERAGE_NAME

tf1 = tf.compat.v1
BATCH_NORM_EPSILON = 0.001  # slim's mobilenet_v1 arg scope (mobilenet_v1.arg_scope)
_OPS = {value: name for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")}
_PADDING = {value: name for name, value in vars(schema.Padding).items()
            if not name.startswith("_")}
_ACTIVATIONS = {value: name for name, value in vars(schema.ActivationFunctionType).items()
                if not name.startswith("_")}
_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_LAYOUT_OPS = ("AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")


@dataclass
class TfliteLayer:
    """A convolution of the .tflite, dequantized: `weights` as stored ([O, H, W, I] for
    CONV_2D, [1, H, W, I*M] for DEPTHWISE_CONV_2D), `bias` [O]."""
    op: str
    index: int  # position in the operator list
    tensor: str  # the weights tensor's name, for messages
    input_channels: int
    stride: int
    padding: str
    activation: str
    weights: np.ndarray
    bias: np.ndarray


@dataclass
class NetworkLayer:
    """A convolution of our network: its scope, kind and variables' shapes."""
    scope: str
    kind: str  # conv, depthwise or logits
    stride: int
    weights_shape: list


def _dequantize(tensor, buffers, dtype):
    values = np.frombuffer(bytes(buffers[tensor.buffer].data), dtype).reshape(tensor.shape)
    quantization = tensor.quantization
    scale = np.asarray(quantization.scale, np.float64)
    zero_point = np.asarray(quantization.zeroPoint if quantization.zeroPoint is not None
                            else [0], np.float64)
    if scale.size > 1:
        # TOCO stored quantizedDimension 3 on 1-D biases: their only axis is 0.
        axis = quantization.quantizedDimension if values.ndim > 1 else 0
        shape = [1] * values.ndim
        shape[axis] = scale.size
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return ((values.astype(np.float64) - zero_point) * scale).astype(np.float32)


def tflite_layers(model, path):
    """The convolutions of an int8 .tflite (bytes), in execution order, and the op list.
    `path` names the file in errors."""
    try:
        tree = schema.ModelT.InitFromPackedBuf(model, 0)
    except Exception as err:  # the flatbuffer reader raises anything on garbage
        raise InputError(path, f"not a TFLite model ({err})") from err
    if len(tree.subgraphs) != 1:
        raise InputError(path, f"{len(tree.subgraphs)} subgraphs, not one")
    graph = tree.subgraphs[0]
    layers, ops = [], []
    for index, operator in enumerate(graph.operators):
        code = tree.operatorCodes[operator.opcodeIndex]
        op = _OPS.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        ops.append(op)
        if op not in _WEIGHTED_OPS:
            if op not in _LAYOUT_OPS:
                raise InputError(path, f"operator {index} is {op}: MobileNet v1 has only "
                                       f"{', '.join(_WEIGHTED_OPS + _LAYOUT_OPS)}")
            continue
        inputs = [graph.tensors[i] for i in operator.inputs]
        if len(inputs) != 3 or inputs[1].type != schema.TensorType.INT8 \
                or inputs[2].type != schema.TensorType.INT32:
            raise InputError(path, f"operator {index} ({op}) has no int8 weights and int32 "
                                   "bias: not a full-int8 model")
        options = operator.builtinOptions
        layers.append(TfliteLayer(
            op=op, index=index, tensor=inputs[1].name.decode(),
            input_channels=int(inputs[0].shape[-1]), stride=int(options.strideH),
            padding=_PADDING[options.padding],
            activation=_ACTIVATIONS[options.fusedActivationFunction],
            weights=_dequantize(inputs[1], tree.buffers, np.int8),
            bias=_dequantize(inputs[2], tree.buffers, np.int32)))
    image = graph.tensors[graph.inputs[0]]
    return layers, ops, [int(size) for size in image.shape]


def network_layers(settings):
    """Our network's convolutions, in execution order, for a recipe."""
    strides = [stride for _, stride, _ in mobilenet_v1.CONV_DEFS]
    graph = tf.Graph()
    with graph.as_default():
        mobilenet_v1.build(tf1.placeholder(tf.float32, input_shape(settings)), settings,
                           is_training=False)
        shapes = {v.op.name: v.shape.as_list() for v in tf1.model_variables()}
    layers = [NetworkLayer(f"{mobilenet_v1.SCOPE}/Conv2d_0", "conv", strides[0],
                           shapes[f"{mobilenet_v1.SCOPE}/Conv2d_0/weights"])]
    for i in range(1, len(mobilenet_v1.CONV_DEFS)):
        scope = f"{mobilenet_v1.SCOPE}/Conv2d_{i}"
        layers += [
            NetworkLayer(f"{scope}_depthwise", "depthwise", strides[i],
                         shapes[f"{scope}_depthwise/depthwise_weights"]),
            NetworkLayer(f"{scope}_pointwise", "conv", 1, shapes[f"{scope}_pointwise/weights"]),
        ]
    logits = f"{mobilenet_v1.SCOPE}/Logits/Conv2d_1c_1x1"
    layers.append(NetworkLayer(logits, "logits", 1, shapes[f"{logits}/weights"]))
    return layers


def as_network_weights(layer):
    """A .tflite convolution's weights in TensorFlow's layout: [H, W, I, O] for a
    convolution, [H, W, I, M] for a depthwise one (a depthwise convolution of one input
    channel is the convolution [H, W, 1, M])."""
    if layer.op == "CONV_2D":
        return layer.weights.transpose(1, 2, 3, 0)
    _, height, width, channels = layer.weights.shape
    return layer.weights.reshape(height, width, layer.input_channels,
                                 channels // layer.input_channels)


def match_layers(tflite, network, image_shape, settings, path):
    """[(NetworkLayer, weights in TF layout, bias)], or an InputError naming the first
    tensor of the .tflite that does not fit the recipe's network."""
    recipe = (f"depth_multiplier {settings['depth_multiplier']}, image_size "
              f"{settings['image_size']}, grayscale {str(settings['grayscale']).lower()}")
    if image_shape != input_shape(settings):
        raise InputError(path, f"input shape {image_shape}; the recipe ({recipe}) takes "
                               f"{input_shape(settings)}")
    matched = []
    for i, target in enumerate(network):
        if i == len(tflite):
            raise InputError(path, f"{len(tflite)} convolutions; MobileNet v1 has "
                                   f"{len(network)} (the first missing: {target.scope})")
        layer = tflite[i]
        weights = as_network_weights(layer)
        depthwise_ok = layer.op == "DEPTHWISE_CONV_2D" and (
            target.kind == "depthwise" or layer.input_channels == 1)
        kind_ok = depthwise_ok or (layer.op == "CONV_2D" and target.kind != "depthwise")
        activation = "NONE" if target.kind == "logits" else "RELU6"
        problem = None
        if not kind_ok:
            problem = f"is {layer.op}, {target.scope} is a {target.kind} convolution"
        elif list(weights.shape) != target.weights_shape:
            problem = (f"has shape {list(layer.weights.shape)} ({list(weights.shape)} in "
                       f"TensorFlow's layout); {target.scope} needs {target.weights_shape}")
        elif layer.stride != target.stride or layer.padding != "SAME":
            problem = (f"has stride {layer.stride}, padding {layer.padding}; {target.scope} "
                       f"has stride {target.stride}, padding SAME")
        elif layer.activation != activation:
            problem = f"is followed by {layer.activation}; {target.scope} by {activation}"
        if problem:
            raise InputError(path, f"tensor {layer.tensor!r} (operator {layer.index}) "
                                   f"{problem}, for the recipe ({recipe})")
        matched.append((target, weights, layer.bias))
    if len(tflite) > len(network):
        extra = tflite[len(network)]
        raise InputError(path, f"tensor {extra.tensor!r} (operator {extra.index}): a "
                               f"convolution after the classifier; MobileNet v1 has "
                               f"{len(network)}")
    return matched


def _variable_names(target):
    if target.kind == "logits":
        return {"weights": f"{target.scope}/weights", "bias": f"{target.scope}/biases"}
    batch_norm = f"{target.scope}/BatchNorm"
    weights = "depthwise_weights" if target.kind == "depthwise" else "weights"
    return {"weights": f"{target.scope}/{weights}", "beta": f"{batch_norm}/beta",
            "gamma": f"{batch_norm}/gamma", "mean": f"{batch_norm}/moving_mean",
            "variance": f"{batch_norm}/moving_variance"}


def folded_values(matched):
    """{variable name: value}: the folded weights, batch norms that pass the convolution
    through unchanged (mean 0, variance 1 - eps, gamma 1, beta = the bias)."""
    values = {}
    for target, weights, bias in matched:
        names = _variable_names(target)
        values[names["weights"]] = weights
        if target.kind == "logits":
            values[names["bias"]] = bias
            continue
        channels = bias.shape[0]
        values[names["gamma"]] = np.ones(channels, np.float32)
        values[names["beta"]] = bias
        values[names["mean"]] = np.zeros(channels, np.float32)
        values[names["variance"]] = np.full(channels, 1 - BATCH_NORM_EPSILON, np.float32)
    return values


def convolution_statistics(values, matched, settings, images, threads=0):
    """{scope: (mean, variance)} per channel of each convolution's output (before its
    batch norm) over every position of `images` (float [1, H, W, C] arrays), in float64,
    with the folded `values` loaded."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, input_shape(settings))
        mobilenet_v1.build(inputs, settings, is_training=False)
        variables = {v.op.name: v for v in tf1.model_variables()}
        convolutions = {
            target.scope: graph.get_operation_by_name(
                f"{target.scope}/BatchNorm/FusedBatchNormV3").inputs[0]
            for target, _, _ in matched if target.kind != "logits"}
        sums = {scope: 0.0 for scope in convolutions}
        squares = dict(sums)
        positions = dict.fromkeys(convolutions, 0)
        with tf1.Session(config=session_config(threads)) as sess:
            sess.run([variables[name].assign(value) for name, value in values.items()])
            for image in images:
                for scope, output in sess.run(convolutions, {inputs: image}).items():
                    channels = output.reshape(-1, output.shape[-1]).astype(np.float64)
                    sums[scope] = sums[scope] + channels.sum(axis=0)
                    squares[scope] = squares[scope] + (channels ** 2).sum(axis=0)
                    positions[scope] += channels.shape[0]
    if not all(positions.values()):
        raise ValueError("no images to measure the batch norms' statistics on")
    statistics = {}
    for scope in convolutions:
        mean = sums[scope] / positions[scope]
        statistics[scope] = (mean, np.maximum(squares[scope] / positions[scope] - mean ** 2,
                                              0.0))
    return statistics


def batch_norm_values(matched, statistics):
    """{variable name: value} of every batch norm: measured statistics (m, v), gamma =
    sqrt(v + eps), beta = bias + m: eval mode computes conv + bias, as the .tflite does."""
    values = {}
    for target, _, bias in matched:
        if target.kind == "logits":
            continue
        mean, variance = statistics[target.scope]
        names = _variable_names(target)
        values[names["mean"]] = mean.astype(np.float32)
        values[names["variance"]] = variance.astype(np.float32)
        values[names["gamma"]] = np.sqrt(variance + BATCH_NORM_EPSILON).astype(np.float32)
        values[names["beta"]] = (bias.astype(np.float64) + mean).astype(np.float32)
    return values


def write_checkpoint(values, prefix):
    """A checkpoint at `prefix` (model.ckpt-0) holding every model variable and its moving
    average (the same value), and global_step 0, as a training run's checkpoint does."""
    graph = tf.Graph()
    with graph.as_default():
        names = {}
        for name, value in sorted(values.items()):
            # Two variables: a Saver refuses one variable under two names.
            for key in (name, f"{name}/{MOVING_AVERAGE_NAME}"):
                names[key] = tf1.Variable(value, name=key.replace("/", "_"))
        names["global_step"] = tf1.Variable(np.int64(0), name="global_step")
        saver = tf1.train.Saver(names, write_version=tf1.train.SaverDef.V2)
        Path(prefix).parent.mkdir(parents=True, exist_ok=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            saver.save(sess, str(prefix), write_meta_graph=False, write_state=False)
    record_checkpoint(prefix)
