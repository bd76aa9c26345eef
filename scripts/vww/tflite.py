"""Int8 TFLite models: conversion, the LiteRT interpreter, input quantization, analysis."""

from collections import Counter

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from vww.export import INPUT_NODE, OUTPUT_NODE, input_shape


def convert_int8(frozen_graph_path, settings, calibration_images):
    """Full-int8 .tflite bytes (int8 input and output, builtin int8 ops only).

    `calibration_images` yields float [1, H, W, C] arrays in [-1, 1], preprocessed as for
    evaluation, from which the converter picks every activation's range.
    """
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(frozen_graph_path), [INPUT_NODE], [OUTPUT_NODE],
        input_shapes={INPUT_NODE: input_shape(settings)})
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image] for image in calibration_images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def interpreter(model_bytes):
    """A LiteRT interpreter running TFLite's builtin kernels.

    The default XNNPACK delegate rounds differently from the microcontroller's kernels
    (outputs off by 1 LSB); without it LiteRT computes what TFLM computes.
    """
    runner = Interpreter(model_content=model_bytes,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner.allocate_tensors()
    return runner


def quantize(values, scale, zero_point):
    """Float values -> int8 as the model's input expects: round(x / scale) + zero point."""
    return np.clip(np.round(values / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(values, scale, zero_point):
    return (values.astype(np.float32) - zero_point) * scale


def io_quantization(runner):
    """((input scale, zero point), (output scale, zero point)) of a LiteRT interpreter."""
    return (runner.get_input_details()[0]["quantization"],
            runner.get_output_details()[0]["quantization"])


def input_int8(runner, image):
    """One float image [1, H, W, C] (eval-preprocessed, in [-1, 1]) as the int8 input."""
    (scale, zero_point), _ = io_quantization(runner)
    return quantize(image, scale, zero_point)


def invoke(runner, int8_input):
    """The int8 scores [2] of one int8 input."""
    runner.set_tensor(runner.get_input_details()[0]["index"], int8_input)
    runner.invoke()
    return runner.get_tensor(runner.get_output_details()[0]["index"])[0]


def op_counts(runner):
    """{op name: count} of the model's operators."""
    return dict(sorted(Counter(op["op_name"] for op in runner._get_ops_details()).items()))


def model_stats(runner):
    """Multiply-accumulates of the convolutions and the count of constant parameters."""
    tensors = {t["index"]: t for t in runner.get_tensor_details()}
    macs = 0
    weights = set()
    for op in runner._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        _, out_h, out_w, out_c = tensors[op["outputs"][0]]["shape"]
        kernel = tensors[op["inputs"][1]]["shape"]  # conv [oc, kh, kw, ic]; depthwise [1, kh, kw, oc]
        per_output = kernel[1] * kernel[2] * (kernel[3] if op["op_name"] == "CONV_2D" else 1)
        macs += int(out_h * out_w * out_c * per_output)
        weights.update(op["inputs"][1:])
    parameters = sum(int(np.prod(tensors[i]["shape"])) for i in weights if i >= 0)
    return {"macs": macs, "parameters": parameters}
