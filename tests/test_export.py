"""The export chain on a real short training: frozen graph, int8 .tflite, TFLM, C source."""

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from conftest import SHORT_MODEL, read_records, run, sha256
from vww.export import micro
from vww.export.convert import ranged_tensors, reference_calibration
from vww.export.graph import INPUT_NODE, OUTPUT_NODE, fold_batch_norms, load_graph_def, serialize
from vww.export.layers import layer_table
from vww.export.litert import input_int8, interpreter, invoke, io_quantization, quantize
from vww.model import mobilenet_v1, preprocessing, recipe
from vww.model.dataset import eval_examples, record_files
from vww.train.checkpoints import weights_saver

tf1 = tf.compat.v1
SETTINGS = {**{name: default for name, (default, _) in recipe.RECIPE.items()},
            "batch_norm_decay": 0.9, "moving_average_decay": 0.99}
BUILTIN_INT8_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"}


def val_images(records, count=12):
    return np.concatenate([example.image for example in
                           eval_examples(record_files(records["val"], "val"), SETTINGS, count)])


def frozen_outputs(path, images):
    graph = tf.Graph()
    with graph.as_default():
        tf1.import_graph_def(load_graph_def(path), name="")
        with tf1.Session() as sess:
            return np.concatenate([sess.run(f"{OUTPUT_NODE}:0", {f"{INPUT_NODE}:0": image[None]})
                                   for image in images])


def checkpoint_outputs(checkpoint, weights, images):
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf1.placeholder(tf.float32, [None, 96, 96, 1])
        _, end_points = mobilenet_v1.build(placeholder, SETTINGS, is_training=False)
        saver = weights_saver(weights)
        with tf1.Session() as sess:
            saver.restore(sess, str(checkpoint))
            return sess.run(end_points["Predictions"], {placeholder: images})


@pytest.mark.parametrize("weights", ["ema", "raw"])
def test_frozen_graph_computes_what_the_checkpoint_computes(exported, sample_records, weights):
    out, checkpoint = exported
    images = val_images(sample_records[0])
    frozen = frozen_outputs(out / f"frozen_{weights}.pb", images)
    np.testing.assert_allclose(frozen, checkpoint_outputs(checkpoint, weights, images),
                               rtol=0, atol=1e-6)
    assert frozen.shape == (len(images), 2)


def test_ema_and_raw_frozen_graphs_differ_and_freezing_is_reproducible(exported, tmp_path):
    out, checkpoint = exported
    assert sha256(out / "frozen_ema.pb") != sha256(out / "frozen_raw.pb")
    run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", checkpoint,
        "--output", tmp_path / "again.pb")
    assert sha256(tmp_path / "again.pb") == sha256(out / "frozen_ema.pb")


def test_freezing_a_checkpoint_that_does_not_fit_fails_clearly(exported, tmp_path):
    out, checkpoint = exported
    run("export_inference_graph.py", "--output", tmp_path / "wide.pb", "--depth-multiplier",
        "0.5", *SHORT_MODEL)
    wide = run("freeze_graph.py", "--graph", tmp_path / "wide.pb", "--checkpoint",
               checkpoint, "--output", tmp_path / "x.pb", check=False)
    assert wide.returncode != 0 and "another model's checkpoint" in wide.stderr
    missing = run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint",
                  tmp_path / "missing.ckpt", "--output", tmp_path / "y.pb", check=False)
    assert missing.returncode != 0 and "missing.ckpt" in missing.stderr
    assert not list(tmp_path.glob("*.pb.*")) and not (tmp_path / "x.pb").exists()


def test_tflite_is_full_int8_and_reproducible(exported, sample_records, tmp_path):
    out, _ = exported
    runner = interpreter((out / "model.tflite").read_bytes())
    assert runner.get_input_details()[0]["dtype"] == np.int8
    assert list(runner.get_input_details()[0]["shape"]) == [1, 96, 96, 1]
    assert runner.get_output_details()[0]["dtype"] == np.int8
    assert {op["op_name"] for op in runner._get_ops_details()} <= BUILTIN_INT8_OPS
    (in_scale, _), (out_scale, out_zero) = io_quantization(runner)
    assert abs(in_scale - 1 / 127.5) < 1e-3 and (out_scale, out_zero) == (1 / 256, -128)
    run("quantize.py", "--frozen-graph", out / "frozen_ema.pb", "--records",
        *sample_records[0]["val"], "--num-images", 50, "--output", tmp_path / "again.tflite")
    assert sha256(tmp_path / "again.tflite") == sha256(out / "model.tflite")


def test_folded_batch_norms_compute_what_the_frozen_graph_computes(exported, sample_records,
                                                                   tmp_path):
    """The graph quantize.py converts: no batch norm left, the same scores within float
    rounding, on real val images."""
    out, _ = exported
    folded = fold_batch_norms(load_graph_def(out / "frozen_ema.pb"))
    assert not [n.name for n in folded.node if "BatchNorm" in n.op]
    assert sum(n.op == "BiasAdd" for n in folded.node) == 27 + 1  # 27 folded + the logits
    (tmp_path / "folded.pb").write_bytes(serialize(folded))
    images = val_images(sample_records[0])
    np.testing.assert_allclose(frozen_outputs(tmp_path / "folded.pb", images),
                               frozen_outputs(out / "frozen_ema.pb", images), rtol=0, atol=1e-5)


def test_reference_calibration_ranges_the_tensors_the_converter_ranges(exported,
                                                                      sample_records):
    """Our calibration (TFLite's reference kernels) against the converter's own (its
    optimized kernels) on the same float model and images: the same tensors get ranges,
    and the ranges agree to float rounding."""
    out, _ = exported
    images = [[image] for image in val_images(sample_records[0], count=20)[:, None]]
    converter = tf1.lite.TFLiteConverter.from_frozen_graph(
        str(out / "frozen_ema.pb"), [INPUT_NODE], [OUTPUT_NODE],
        input_shapes={INPUT_NODE: [1, 96, 96, 1]})
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(images)
    converter._experimental_calibrate_only = True
    theirs = {}
    for index, tensor in enumerate(
            schema.ModelT.InitFromPackedBuf(converter.convert(), 0).subgraphs[0].tensors):
        if tensor.quantization is not None and tensor.quantization.min is not None:
            theirs[index] = (tensor.quantization.min[0], tensor.quantization.max[0])
    with reference_calibration():
        ours_model = converter.convert()
    ours = {index: (t.quantization.min[0], t.quantization.max[0]) for index, t in enumerate(
        schema.ModelT.InitFromPackedBuf(ours_model, 0).subgraphs[0].tensors)
        if t.quantization is not None and t.quantization.min is not None}
    assert sorted(ours) == sorted(theirs) == ranged_tensors(ours_model)
    assert len(ours) == 32  # the input and the output of each of the 31 ops
    np.testing.assert_allclose(np.array(list(ours.values())),
                               np.array([theirs[i] for i in ours]), rtol=1e-5, atol=1e-6)


def mobilenet_layers(size=96, depth_multiplier=0.25):
    """MobileNet v1's int8 layers from its definition (slim's conv defs, batch norm folded
    into a bias): (op, output shape, MACs, parameters, input elements) of each."""
    separable = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), *[(1, 512)] * 5,
                 (2, 1024), (1, 1024)]
    side, channels = size // 2, int(32 * depth_multiplier)
    layers = [("CONV_2D", [1, side, side, channels], side * side * channels * 9,
               channels * 9 + channels, size * size)]
    for stride, depth in separable:
        inputs = side * side * channels
        side = side // stride
        layers.append(("DEPTHWISE_CONV_2D", [1, side, side, channels],
                       side * side * channels * 9, channels * 9 + channels, inputs))
        out = int(depth * depth_multiplier)
        layers.append(("CONV_2D", [1, side, side, out], side * side * out * channels,
                       out * channels + out, side * side * channels))
        channels = out
    layers += [("AVERAGE_POOL_2D", [1, 1, 1, channels], 0, 0, side * side * channels),
               ("CONV_2D", [1, 1, 1, 2], 2 * channels, 2 * channels + 2, channels),
               ("RESHAPE", [1, 2], 0, 0, 2), ("SOFTMAX", [1, 2], 0, 0, 2)]
    return layers


def test_layer_table_is_mobilenet_layer_by_layer(exported):
    out, _ = exported
    rows = layer_table(interpreter((out / "model.tflite").read_bytes()))
    expected = mobilenet_layers()
    assert len(rows) == len(expected) == 31
    for row, (op, shape, macs, parameters, inputs) in zip(rows, expected):
        elements = math.prod(shape)
        assert row == {"op": op, "output_shape": shape, "macs": macs, "parameters": parameters,
                       "activation_bytes": elements, "live_bytes": inputs + elements}, row
    assert sum(row["macs"] for row in rows) == 7_157_888
    assert max(row["live_bytes"] for row in rows) == 48 * 48 * 8 + 48 * 48 * 16


def confusion(labels, predicted):
    """The 2x2 confusion matrix (rows: label) counted here, pair by pair."""
    counts = [[0, 0], [0, 0]]
    for label, guess in zip(labels, predicted, strict=True):
        counts[label][guess] += 1
    return counts


def test_per_image_predictions_add_up_to_the_reports(evaluated, sample_records):
    """--predictions of evaluate.py and evaluate_tflite.py: in record order (labels read
    from the records here), each weight set and preprocessing giving its report's matrix."""
    records, _ = sample_records
    labels = [int(r["image/class/label"]) for r in read_records(records["val"])]
    float_eval, int8_eval = (json.loads(path.read_text()) for path in evaluated)
    folder = evaluated[0].parent
    floats = json.loads((folder / "float_predictions.json").read_text())
    assert floats["predicted"] == floats["by_weights"][floats["weights"]]
    for weights, predicted in floats["by_weights"].items():
        assert confusion(labels, predicted) == float_eval["by_weights"][weights]["confusion_matrix"]
    int8 = json.loads((folder / "int8_predictions.json").read_text())
    assert int8["labels"] == labels
    for kind, predicted in int8["predicted"].items():
        assert (confusion(labels, predicted)
                == int8_eval["by_preprocessing"][kind]["confusion_matrix"]), kind


def test_tflite_eval_reports_the_gap(evaluated, sample_records):
    report = json.loads(evaluated[1].read_text())
    assert report["images"] == sample_records[1]["val"]
    assert report["int8_accuracy"] > 0.7
    assert report["float_accuracy"] == json.loads(evaluated[0].read_text())["accuracy"]
    assert report["float_minus_int8"] == report["float_accuracy"] - report["int8_accuracy"]
    assert abs(report["float_minus_int8"]) < 0.1


def test_tflite_eval_curves_threshold_and_sizes_are_those_of_its_scores(
        exported, evaluated, sample_records):
    """Each preprocessing's figures recomputed by brute force from the int8 scores of every
    val image and the person boxes of its record."""
    out, _ = exported
    records = sample_records[0]["val"]
    report = json.loads(evaluated[1].read_text())
    float_eval = json.loads(evaluated[0].read_text())
    runner = interpreter((out / "model.tflite").read_bytes())
    boxes = [(r["image/object/bbox/ymax"] - r["image/object/bbox/ymin"])
             * (r["image/object/bbox/xmax"] - r["image/object/bbox/xmin"])
             for r in read_records(records)]
    largest = [float(areas.max()) if areas.size else 0.0 for areas in boxes]
    by_kind = {}
    for kind in ("slim_eval", "device"):
        examples = list(eval_examples(record_files(records, "val"), SETTINGS, kind=kind))
        labels = [example.label for example in examples]
        scores = [invoke(runner, input_int8(runner, example.image)) for example in examples]
        person = [int(s[1]) for s in scores]
        said = [int(s[1] > s[0]) for s in scores]  # argmax; a tie is class 0
        got = report["by_preprocessing"][kind]
        assert got["accuracy"] == sum(map(int.__eq__, said, labels)) / len(labels)
        pairs = [(p, n) for p, lp in zip(person, labels) if lp for n, ln in zip(person, labels)
                 if not ln]
        assert got["roc_auc"] == pytest.approx(
            sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs),
            abs=1e-12)
        for bucket in got["recall_by_person_size"]:
            if bucket["bucket"] == "no person":
                members = [i for i, label in enumerate(labels) if not label]
            else:
                members = [i for i, label in enumerate(labels) if label and
                           bucket["min_box_fraction"] <= largest[i] < bucket["max_box_fraction"]]
            assert bucket["images"] == len(members), bucket
            if members:
                assert bucket["recall"] == pytest.approx(
                    sum(said[i] == labels[i] for i in members) / len(members)), bucket
        by_kind[kind] = labels, person
    assert report["int8_accuracy"] == report["by_preprocessing"]["slim_eval"]["accuracy"]
    assert [b["images"] for b in float_eval["recall_by_person_size"]] == [
        b["images"] for b in report["by_preprocessing"]["slim_eval"]["recall_by_person_size"]]
    # The operating point: on the device scores, the lowest threshold of best accuracy,
    # and a band of round(0.1 / (1/256)) = 26 steps each side.
    labels, person = by_kind["device"]
    accuracy = {t: sum((p >= t) == bool(label) for p, label in zip(person, labels))
                for t in range(-128, 128)}
    threshold = min(t for t, a in accuracy.items() if a == max(accuracy.values()))
    point = report["operating_point"]
    assert (point["preprocessing"], point["threshold"]) == ("device", threshold)
    assert point["accuracy"] == accuracy[threshold] / len(labels)
    low, high = max(threshold - 26, -128), min(threshold + 26, 127)
    assert (point["unsure_low"], point["unsure_high"]) == (low, high)
    unsure = sum(low <= p < high for p in person)
    assert point["unsure_fraction"] == unsure / len(labels)
    assert report["device_int8_accuracy"] == report["by_preprocessing"]["device"]["accuracy"]


def test_tflm_agrees_with_litert_on_every_val_image(exported, sample_records, tmp_path):
    out, _ = exported
    records, counts = sample_records
    run("check_micro.py", "--tflite", out / "model.tflite", "--records", *records["val"],
        "--output", tmp_path / "micro.json")
    report = json.loads((tmp_path / "micro.json").read_text())
    assert report["images_compared"] == counts["val"] and report["mismatches"] == []
    assert 50_000 < report["arena_bytes"] < 200_000
    assert set(report["ops"]) <= BUILTIN_INT8_OPS and sum(report["ops"].values()) == 31


def test_an_op_tflm_lacks_is_named():
    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 1], tf.float32)])
    def tiled(x):
        return tf.tile(x * 2.0, [1, 2, 2, 1])

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tiled.get_concrete_function()], tiled)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 4, 4, 1)).astype(np.float32)] for _ in range(10))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with pytest.raises(micro.MicroError, match="TILE"):
        micro.load(converter.convert())


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_c_source_compiles_and_holds_the_tflite_bytes(exported, tmp_path):
    out, _ = exported
    run("write_c_source.py", "--tflite", out / "model.tflite", "--array-name",
        "g_person_detect_model_data", "--output", tmp_path / "person_detect_model_data.cc")
    header = (tmp_path / "person_detect_model_data.h").read_text()
    source = (tmp_path / "person_detect_model_data.cc").read_text()
    assert "extern const unsigned char g_person_detect_model_data[];" in header
    assert "extern const int g_person_detect_model_data_len;" in header
    assert "extern const unsigned int g_person_detect_model_data_size;" in header
    assert "alignas(16) const unsigned char g_person_detect_model_data[]" in source
    (tmp_path / "dump.cc").write_text(
        '#include <cstdio>\n#include <cstdint>\n#include "person_detect_model_data.h"\n'
        "int main(int, char** argv) {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_person_detect_model_data) % 16) return 2;\n"
        "  if (g_person_detect_model_data_size != unsigned(g_person_detect_model_data_len)) "
        "return 3;\n"
        '  FILE* f = std::fopen(argv[1], "wb");\n'
        "  std::fwrite(g_person_detect_model_data, 1, g_person_detect_model_data_len, f);\n"
        "  return std::fclose(f);\n}\n")
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-o", tmp_path / "dump",
                    tmp_path / "dump.cc", tmp_path / "person_detect_model_data.cc"],
                   check=True, cwd=tmp_path)
    subprocess.run([tmp_path / "dump", tmp_path / "roundtrip.tflite"], check=True)
    assert (tmp_path / "roundtrip.tflite").read_bytes() == (out / "model.tflite").read_bytes()


SETTINGS_PROGRAM = """\
#include <cstdio>
#include "person_detect_model_data_settings.h"

int main() {
  namespace s = person_detect_model_data;
  std::printf("%d %d %d %d\\n", s::kNumCols, s::kNumRows, s::kNumChannels, s::kMaxImageSize);
  std::printf("%.9g %d %.9g %d\\n", s::kInputScale, s::kInputZeroPoint, s::kOutputScale,
              s::kOutputZeroPoint);
  std::printf("%d %s %s %d %d\\n", s::kCategoryCount, s::kCategoryLabels[0],
              s::kCategoryLabels[1], s::kBackgroundIndex, s::kPersonIndex);
  std::printf("%d %d\\n", s::kTensorArenaSize, s::kOpCount);
  for (int p = 0; p < 256; ++p) std::printf("%d ", s::PixelToInput(p));
  std::printf("\\n%.9g %.9g\\n", s::ScoreToProbability(-128), s::ScoreToProbability(127));
  std::printf("%d %d %d\\n", s::kScoreThreshold, s::kUnsureLow, s::kUnsureHigh);
  for (int score = -128; score < 128; ++score) {
    const s::Detection detection = s::Detect(static_cast<int8_t>(score));
    std::printf("%c", detection == s::Detection::kPresent  ? 'P'
                      : detection == s::Detection::kAbsent ? 'A'
                                                           : 'U');
  }
  std::printf("\\n");
#define PRINT_OP(name) std::printf("%s ", #name);
  PERSON_DETECT_MODEL_DATA_OPS(PRINT_OP)
  std::printf("\\n");
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_settings_header_compiles_and_maps_pixels_as_evaluation_does(
        exported, evaluated, sample_records, tmp_path):
    """The generated header with every constant, the op macro and Detect in use, compiled
    with g++; its pixel table against the evaluation's preprocessing of a gray picture, its
    decisions against tflite_eval.json's operating point. Its op macro and arena in TFLM's
    real resolver and interpreter: tests/test_mcu.py."""
    out, checkpoint = exported
    (tmp_path / "labels.txt").write_text("0:background\n1:person\n")
    run("describe_model.py", "--labels", tmp_path / "labels.txt", "--tflite",
        out / "model.tflite", "--tflite-eval", evaluated[1], "--checkpoint", checkpoint,
        *SHORT_MODEL,
        "--output", tmp_path / "model.json")
    run("check_micro.py", "--tflite", out / "model.tflite", "--records",
        *sample_records[0]["val"], "--num-images", 5, "--output", tmp_path / "micro_check.json")
    run("write_model_settings.py",
        "--model-json", tmp_path / "model.json", "--micro-check", tmp_path / "micro_check.json",
        "--output", tmp_path / "person_detect_model_data_settings.h")
    (tmp_path / "settings.cc").write_text(SETTINGS_PROGRAM)
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-o", tmp_path / "settings",
                    tmp_path / "settings.cc"], check=True, cwd=tmp_path)
    lines = subprocess.run([tmp_path / "settings"], capture_output=True, text=True,
                           check=True).stdout.splitlines()

    description = json.loads((tmp_path / "model.json").read_text())
    micro_check = json.loads((tmp_path / "micro_check.json").read_text())
    scale = description["tflite_input_quantization"]["scale"]
    zero_point = description["tflite_input_quantization"]["zero_point"]
    out_scale = description["tflite_output_quantization"]["scale"]
    out_zero = description["tflite_output_quantization"]["zero_point"]
    assert lines[0] == "96 96 1 9216"
    assert lines[1].split() == [f"{scale:.9g}", str(zero_point), f"{out_scale:.9g}",
                                str(out_zero)]
    assert lines[2] == "2 background person 0 1"
    arena, op_count = map(int, lines[3].split())
    assert arena == math.ceil(micro_check["arena_bytes"] * 1.1 / 1024) * 1024
    assert op_count == len(micro_check["ops"]) == 5
    assert lines[8].split() == ["AveragePool2D", "Conv2D", "DepthwiseConv2D", "Reshape",
                                "Softmax"]
    # A gray picture of each value through the evaluation's crop, resize and scaling.
    gray = np.repeat(np.arange(256, dtype=np.uint8), 8 * 8 * 3).reshape(256, 8, 8, 3)
    image = tf.image.central_crop(tf.image.convert_image_dtype(gray, tf.float32), 0.875)
    gray_inputs = preprocessing.finish(preprocessing.resize(image, 96), grayscale=True)
    expected = quantize(gray_inputs.numpy()[:, 48, 48, 0], scale, zero_point)
    assert [int(v) for v in lines[4].split()] == expected.tolist()
    assert lines[5].split() == [f"{out_scale * (-128 - out_zero):.9g}",
                                f"{out_scale * (127 - out_zero):.9g}"]
    point = json.loads(evaluated[1].read_text())["operating_point"]
    assert point["unsure_low"] < point["threshold"] < point["unsure_high"]
    assert lines[6] == f"{point['threshold']} {point['unsure_low']} {point['unsure_high']}"
    assert lines[7] == "".join("P" if score >= point["unsure_high"] else
                               "A" if score < point["unsure_low"] else "U"
                               for score in range(-128, 128))
