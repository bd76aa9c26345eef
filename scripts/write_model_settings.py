#!/usr/bin/env python3
"""Write the C++ header a TFLM application needs beside the model's array.

Everything in it comes from the workflow's own files: the input's size and channels (the
recipe), its int8 quantization (read from the .tflite by describe_model.py), the class
names and the operating point (chosen by evaluate_tflite.py) from model.json, the tensor
arena TFLM measured and the op list from micro_check.json. In a namespace named after the
C file (TFLM's person_detection example names in it), so it sits beside that example's
own model_settings.h:

  kNumCols, kNumRows, kNumChannels, kMaxImageSize    the int8 input image
  kPixelToInput[p], PixelToInput(p)                 an 8-bit camera pixel p -> int8 input
  kInputScale, kInputZeroPoint                       the input's quantization
  kOutputScale, kOutputZeroPoint, ScoreToProbability  the int8 scores -> probabilities
  kCategoryCount, kCategoryLabels, k<Name>Index      the classes, in output order
  kScoreThreshold, kUnsureLow, kUnsureHigh, Detect   the decision on the int8 score of
                                                     class 1: kPresent, kAbsent or kUnsure
  kTensorArenaSize                                   TFLM's measured arena + 10%, in KiB
  kOpCount, <C_FILE>_OPS(OP)                         the ops, as an X-macro: with
      tflite::MicroMutableOpResolver<kOpCount> resolver;
      #define ADD_OP(name) resolver.Add##name();
      PERSON_DETECT_MODEL_DATA_OPS(ADD_OP)

kPixelToInput is what training and evaluation compute for a pixel of that value: the
workflow's preprocessing (vww.model.preprocessing.frame_input: a gray value g as the RGB pixel
(g, g, g), luma, then [-1, 1]) and the model's input quantization. It is the last step of
the device preprocessing that tflite_eval.json's device accuracy and the operating point
were measured with (the whole camera frame at kNumCols x kNumRows, 8-bit, no crop).

Without an operating point (none of evaluate_tflite.py's thresholds met its rule: a weak
model), Detect is the argmax predict.py then takes, with no unsure band, and says why.

The arena was measured by TFLM's Python interpreter on this (64-bit) host; a 32-bit board
needs less, the margin covers other TFLM versions' bookkeeping.

Example:
  python scripts/write_model_settings.py \\
      --model-json results/person_detection/model.json \\
      --micro-check results/person_detection/micro_check.json \\
      --output results/person_detection/c/person_detect_model_data_settings.h
"""

import math
import re
import textwrap
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf

from vww.base.cli import InputError, cli_parser, main_guard
from vww.base.files import write_text
from vww.data.coco import load_json
from vww.export.graph import input_shape
from vww.export.litert import quantize
from vww.model import registry

ARENA_MARGIN = 0.10  # over the arena TFLM measured, rounded up to whole KiB


def resolver_name(op):
    """MicroMutableOpResolver's Add<name> for a builtin op: DEPTHWISE_CONV_2D -> DepthwiseConv2D."""
    return "".join(part.capitalize() if part.isalpha() else part for part in op.split("_"))


def pixel_to_input(grayscale, scale, zero_point):
    """The int8 input of each 8-bit pixel value 0..255 (a gray value for a grayscale model,
    any one channel's for an RGB one), as the board's preprocessing computes it
    (registry.DEVICE_PREPROCESSING's frame_input)."""
    frame_input = registry.EVAL_PREPROCESSINGS[registry.DEVICE_PREPROCESSING].frame_input
    values = np.arange(256, dtype=np.uint8)[:, np.newaxis]
    frame = values if grayscale else np.repeat(values, 3, axis=1)
    model_input = frame_input(tf.constant(frame), grayscale).numpy()[:, 0]
    return quantize(model_input, scale, zero_point)


def c_identifier(text):
    """A class name as part of a C++ identifier: "no person" -> NoPerson."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text))


def argmax_threshold(scale, zero_point):
    """The lowest int8 score of class 1 whose probability is above 0.5: where the argmax of
    two probabilities summing to 1 turns to class 1."""
    return min(math.floor(0.5 / scale + zero_point) + 1, 127)


def decision(description):
    """(comment, threshold, unsure low, unsure high) of the header's Detect: model.json's
    operating point, else the argmax."""
    name = description["class_names"][1]
    point = description.get("operating_point")
    if point is None:
        out_q = description["tflite_output_quantization"]
        threshold = argmax_threshold(out_q["scale"], out_q["zero_point"])
        comment = (f"No operating point ({description['undefined']['operating_point']}): the "
                   f'argmax predict.py takes then, on the score of class 1 alone: "{name}" when '
                   f"its probability is above 0.5; no unsure band.")
        return comment, threshold, threshold, threshold
    band = (f"scores less than {point['unsure_margin']} in probability from the threshold's "
            f"are unsure" if point["unsure_low"] < point["unsure_high"] else "no unsure band")
    comment = (f'The decision on the int8 score of class 1 ("{name}"): the threshold of rule '
               f"{point['rule']} on the val split, device preprocessing (there: accuracy "
               f"{point['accuracy']:.4f}, true positive rate {point['true_positive_rate']:.4f}"
               f", false positive rate {point['false_positive_rate']:.4f}); {band}.")
    return comment, point["threshold"], point["unsure_low"], point["unsure_high"]


def header_text(namespace, shape, description, micro_check):
    _, rows, cols, channels = shape
    table = pixel_to_input(channels == 1, description["tflite_input_quantization"]["scale"],
                           description["tflite_input_quantization"]["zero_point"])
    rows_of_16 = ",\n    ".join(", ".join(f"{v:4d}" for v in table[start:start + 16])
                                for start in range(0, 256, 16))
    in_q = description["tflite_input_quantization"]
    out_q = description["tflite_output_quantization"]
    pixel = ("its gray value" if channels == 1 else "each RGB channel")
    steps = "luma weights, " if channels == 1 else ""
    names = description["class_names"]
    ops = sorted(resolver_name(op) for op in micro_check["ops"])
    arena = math.ceil(micro_check["arena_bytes"] * (1 + ARENA_MARGIN) / 1024) * 1024
    guard = f"{namespace.upper()}_SETTINGS_H_"
    macro = f"{namespace.upper()}_OPS"
    indices = "".join(f"constexpr int k{c_identifier(name)}Index = {index};\n"
                      for index, name in enumerate(names))
    labels = ", ".join(f'"{name}"' for name in names)
    choice, threshold, unsure_low, unsure_high = decision(description)
    choice = textwrap.fill(choice, 80, initial_indent="// ", subsequent_indent="// ")
    return f"""\
// Generated by scripts/write_model_settings.py: what running the model of
// {namespace}.cc with TFLM needs. See that script's --help.
#ifndef {guard}
#define {guard}

#include <cstdint>

namespace {namespace} {{

// The int8 input image, rows x columns x channels ({"grayscale" if channels == 1 else "RGB"}).
constexpr int kNumCols = {cols};
constexpr int kNumRows = {rows};
constexpr int kNumChannels = {channels};
constexpr int kMaxImageSize = kNumCols * kNumRows * kNumChannels;

// int8 input = round(x / kInputScale) + kInputZeroPoint for the float input x in [-1, 1].
constexpr float kInputScale = {in_q["scale"]!r}f;
constexpr int kInputZeroPoint = {in_q["zero_point"]};

// The int8 input of an 8-bit camera pixel, {pixel}, as training and evaluation
// compute it: {steps}scale to [-1, 1], then kInputScale and kInputZeroPoint.
constexpr int8_t kPixelToInput[256] = {{
    {rows_of_16}}};

inline int8_t PixelToInput(uint8_t pixel) {{ return kPixelToInput[pixel]; }}

// probability = kOutputScale * (int8 score - kOutputZeroPoint).
constexpr float kOutputScale = {out_q["scale"]!r}f;
constexpr int kOutputZeroPoint = {out_q["zero_point"]};

inline float ScoreToProbability(int8_t score) {{
  return kOutputScale * (score - kOutputZeroPoint);
}}

// The classes, in the order of the output scores.
constexpr int kCategoryCount = {len(names)};
{indices}constexpr const char* kCategoryLabels[kCategoryCount] = {{{labels}}};

{choice}
// Present at or above kUnsureHigh, absent below kUnsureLow, unsure between.
constexpr int8_t kScoreThreshold = {threshold};
constexpr int8_t kUnsureLow = {unsure_low};
constexpr int8_t kUnsureHigh = {unsure_high};

enum class Detection {{ kAbsent, kUnsure, kPresent }};

inline Detection Detect(int8_t score) {{
  if (score >= kUnsureHigh) return Detection::kPresent;
  if (score < kUnsureLow) return Detection::kAbsent;
  return Detection::kUnsure;
}}

// Bytes of tensor arena: {micro_check["arena_bytes"]:,} measured by TFLM,
// plus {ARENA_MARGIN:.0%}, in whole KiB.
constexpr int kTensorArenaSize = {arena};

// The model's {len(ops)} ops, as MicroMutableOpResolver's Add<name> methods.
constexpr int kOpCount = {len(ops)};
#define {macro}(OP) {" ".join(f"OP({op})" for op in ops)}

}}  // namespace {namespace}

#endif  // {guard}
"""


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--model-json", required=True, help="its model.json")
    parser.add_argument("--micro-check", required=True, help="its micro_check.json")
    parser.add_argument("--output", required=True,
                        help="header to write, <c_file_name>_settings.h; the namespace is "
                             "the name before _settings.h")
    args = parser.parse_args(argv)
    namespace = Path(args.output).name.removesuffix(".h").removesuffix("_settings")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", namespace):
        parser.error(f"--output {args.output!r}: {namespace!r} is not a C++ namespace name")
    description = load_json(args.model_json)
    micro_check = load_json(args.micro_check)
    if not {"ops", "arena_bytes"} <= set(micro_check):
        raise InputError(args.micro_check, "not check_micro.py's report (no ops, arena_bytes)")
    write_text(args.output, header_text(namespace, input_shape(description["recipe"]),
                                        description, micro_check))


if __name__ == "__main__":
    main_guard(main)
