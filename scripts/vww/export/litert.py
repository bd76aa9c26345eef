"""Int8 TFLite models in LiteRT: loading and checking a classifier, the reference-kernel
interpreter TFLM's arithmetic matches, input quantization, one inference."""

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tensorflow.lite.python import schema_py_generated as schema

from vww.base.cli import InputError
from vww.export.graph import input_shape
from vww.model import recipe

NUM_CLASSES = 2  # background and the category
# A TFLite model is a flatbuffer with this file identifier at bytes 4 to 8.
TFLITE_IDENTIFIER = b"TFL3"


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
