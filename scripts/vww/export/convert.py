"""A frozen graph to a full-int8 .tflite, with activation ranges measured by TFLite's
reference kernels, so the bytes do not depend on the CPU."""

import contextlib
import tempfile
from pathlib import Path

import flatbuffers
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.python.optimize import calibrator

from vww.export.graph import (
    INPUT_NODE,
    OUTPUT_NODE,
    fold_batch_norms,
    input_shape,
    load_graph_def,
    serialize,
)
from vww.export.litert import TFLITE_IDENTIFIER, interpreter


def convert_int8(frozen_graph_path, settings, calibration_images):
    """Full-int8 .tflite bytes (int8 input and output, builtin int8 ops only).

    The batch norms are folded first (graph.fold_batch_norms), and `calibration_images`
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
