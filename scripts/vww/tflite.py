"""Int8 TFLite models: conversion, checks, the LiteRT interpreter, input quantization, analysis."""

import contextlib
import tempfile
from collections import Counter
from pathlib import Path

import flatbuffers
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.python.optimize import calibrator

from vww import recipe
from vww.cli import InputError
from vww.export import (
    INPUT_NODE,
    OUTPUT_NODE,
    fold_batch_norms,
    input_shape,
    load_graph_def,
    serialize,
)

NUM_CLASSES = 2  # background and the category
# A TFLite model is a flatbuffer with this file identifier at bytes 4 to 8.
TFLITE_IDENTIFIER = b"TFL3"


def convert_int8(frozen_graph_path, settings, calibration_images):
    """Full-int8 .tflite bytes (int8 input and output, builtin int8 ops only).

    The batch norms are folded first (export.fold_batch_norms), and `calibration_images`
    (float [1, H, W, C] arrays in [-1, 1], preprocessed as for evaluation) give every
    activation's range through TFLite's reference kernels (reference_calibration): the
    converter's own ways of doing both depend on the CPU, these do not.
    """
    with tempfile.TemporaryDirectory() as folder:
        folded = Path(folder) / "folded_graph.pb"
        folded.write_bytes(serialize(fold_batch_norms(load_graph_def(frozen_graph_path))))
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(folded), [INPUT_NODE], [OUTPUT_NODE],
            input_shapes={INPUT_NODE: input_shape(settings)})
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        with reference_calibration():
            return converter.convert()


def ranged_tensors(model):
    """Indices of the tensors the converter's calibrator gives a range to: the model's
    inputs and every operator's outputs."""
    graph = schema.ModelT.InitFromPackedBuf(model, 0).subgraphs[0]
    return sorted({*graph.inputs.tolist(), *(int(i) for op in graph.operators
                                             for i in op.outputs)})


def reference_ranges(model, inputs):
    """{tensor index: (min, max)} of the ranged_tensors of the float `model` over the
    `inputs` (each a list of the model's input arrays), run with TFLite's reference
    kernels."""
    runner = interpreter(model, preserve_all_tensors=True)
    indices = ranged_tensors(model)
    low, high = {i: np.inf for i in indices}, {i: -np.inf for i in indices}
    for arrays in inputs:
        for detail, array in zip(runner.get_input_details(), arrays):
            runner.set_tensor(detail["index"], array)
        runner.invoke()
        for i in indices:
            values = runner.get_tensor(i)
            low[i], high[i] = min(low[i], values.min()), max(high[i], values.max())
    return {i: (float(low[i]), float(high[i])) for i in indices}


def with_ranges(model, ranges):
    """The float `model` with each tensor of `ranges` ({index: (min, max)}) annotated with
    its range, as the converter's calibrator annotates it."""
    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    tensors = tree.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        if tensors[index].quantization is None:
            tensors[index].quantization = schema.QuantizationParametersT()
        tensors[index].quantization.min = [low]
        tensors[index].quantization.max = [high]
    builder = flatbuffers.Builder(len(model))
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


@contextlib.contextmanager
def reference_calibration():
    """Within it, the TFLite converter measures activation ranges with TFLite's reference
    kernels (reference_ranges) instead of its calibrator's optimized ones.

    Those pick their instructions by CPU at run time: the same frozen graph and images
    gave another .tflite under an AMD EPYC (AVX2) CPU model than on an AVX-512 Xeon. The
    reference kernels' instructions are fixed when LiteRT is built, so the ranges, and
    every byte of the .tflite, are the same on any CPU. Everything else (which tensors
    get ranges, the quantizer) is the converter's own.
    """
    measure = calibrator.Calibrator.calibrate

    def calibrate(self, dataset_gen):
        model = self._model_content
        return with_ranges(model, reference_ranges(model, dataset_gen()))

    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        calibrator.Calibrator.calibrate = measure


def interpreter(model_bytes, preserve_all_tensors=False):
    """A LiteRT interpreter running TFLite's reference kernels: the arithmetic TFLM's
    kernels implement, so its int8 outputs are the microcontroller's (with
    `preserve_all_tensors`, every intermediate tensor stays readable after invoke()).

    LiteRT's default kernels are faster (0.66 against 3.8 ms per image here) but round
    differently: outputs 1 LSB off TFLM's on 35 of the 40,503 val images of the full-size
    rehearsal (tests/scale), none of the sample's 119. On 8,000 of those images the
    reference kernels agreed with TFLM on every output.
    """
    runner = Interpreter(model_content=model_bytes,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=preserve_all_tensors)
    runner.allocate_tensors()
    return runner


def litert_compatible(model):
    """The model with the one thing LiteRT refuses and TFLM runs made standard, or None when
    it has none. TOCO, the converter of TFLM's own person_detect.tflite, stored
    quantized_dimension 3 on 1-D bias tensors; their only dimension is 0, so setting it to 0
    changes no arithmetic."""
    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    changed = False
    for subgraph in tree.subgraphs:
        for tensor in subgraph.tensors:
            quantization = tensor.quantization
            if (quantization is not None and quantization.quantizedDimension
                    and tensor.shape is not None and len(tensor.shape) == 1):
                quantization.quantizedDimension = 0
                changed = True
    if not changed:
        return None
    builder = flatbuffers.Builder(len(model))
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def load_classifier(path, settings=None):
    """(bytes, LiteRT interpreter) of an int8 .tflite the workflow can run.

    A model TFLM runs and LiteRT refuses only for TOCO's quantized_dimension on 1-D
    tensors (TFLM's own person_detect.tflite) runs in LiteRT with that made standard
    (litert_compatible); the bytes returned, for TFLM and the C array, are the file's.

    The model must take an int8 image [1, S, S, 1 or 3] (with `settings`, the one its image
    size and channels give) and return the int8 scores of the 2 classes [1, 2]. Anything
    else is an InputError naming the file; unchecked, it fails deep in LiteRT or TFLM with
    no file named, or runs (a 3-class model does) and gives meaningless results.
    """
    try:
        model = Path(path).read_bytes()
    except OSError as err:
        raise InputError(path, err.strerror) from err
    if model[4:8] != TFLITE_IDENTIFIER:
        raise InputError(path, "not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        runner = interpreter(model)
    except (ValueError, RuntimeError) as err:
        standard = litert_compatible(model) if "quantized_dimension" in str(err) else None
        if standard is None:
            raise InputError(path, f"not a valid TFLite model: {err}") from err
        runner = interpreter(standard)
    image, scores = runner.get_input_details()[0], runner.get_output_details()[0]
    if image["dtype"] != np.int8 or scores["dtype"] != np.int8:
        raise InputError(path, f"{np.dtype(image['dtype'])} input, {np.dtype(scores['dtype'])} "
                               "output: not an int8 model (quantize.py writes one)")
    shape = image["shape"].tolist()
    if settings is not None and shape != input_shape(settings):
        raise InputError(path, f"input shape {shape}, not the {input_shape(settings)} of "
                               f"{recipe.as_flags(settings, recipe.INPUT_KEYS)}")
    if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] not in (1, 3):
        raise InputError(path, f"input shape {shape}, not an image [1, size, size, 1 or 3]")
    if scores["shape"].tolist() != [1, NUM_CLASSES]:
        raise InputError(path, f"output shape {scores['shape'].tolist()}, not the scores of "
                               f"{NUM_CLASSES} classes [1, {NUM_CLASSES}]")
    return model, runner


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


def layer_table(runner):
    """One row per operator, in execution order: {"op", "output_shape", "macs",
    "parameters", "activation_bytes", "live_bytes"}.

    macs: multiply-accumulates of a convolution (kernel [oc, kh, kw, ic]; depthwise
    [1, kh, kw, oc]) or fully connected layer, 0 for the others. parameters: elements of
    such a layer's weights and bias (a reshape's shape does not count). activation_bytes:
    its output's bytes. live_bytes: its activation inputs' and output's bytes, which must
    sit in the tensor arena at once while it runs, so the largest bounds the arena from
    below.
    """
    tensors = {t["index"]: t for t in runner.get_tensor_details()}
    ops = runner._get_ops_details()
    # Constants (weights, biases, shapes) are stored in the model: no op computes them and
    # they are not the model's input.
    computed = {i for op in ops for i in op["outputs"]}
    computed.update(d["index"] for d in runner.get_input_details())
    constants = set(tensors) - computed

    def size(index):
        return int(np.prod(tensors[index]["shape"]))

    rows = []
    for op in ops:
        name = op["op_name"]
        inputs = [i for i in op["inputs"] if i >= 0]
        output = op["outputs"][0]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, kernel_h, kernel_w, kernel_c = tensors[inputs[1]]["shape"]
            per_output = kernel_h * kernel_w * (kernel_c if name == "CONV_2D" else 1)
        elif name == "FULLY_CONNECTED":
            per_output = tensors[inputs[1]]["shape"][-1]
        else:
            per_output = 0
        itemsize = {i: np.dtype(tensors[i]["dtype"]).itemsize for i in [*inputs, output]}
        rows.append({
            "op": name,
            "output_shape": tensors[output]["shape"].tolist(),
            "macs": size(output) * int(per_output),
            "parameters": sum(size(i) for i in inputs if i in constants) if per_output else 0,
            "activation_bytes": size(output) * itemsize[output],
            "live_bytes": sum(size(i) * itemsize[i] for i in [*inputs, output]
                              if i not in constants),
        })
    return rows
