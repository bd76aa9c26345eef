"""import_tflite.py, report_import.py and extract_tflite.py on a real trained model's .tflite:
the float import computes the dequantized int8 graph (checked by a numpy forward pass of
LiteRT's own tensors), a TOCO-converted copy imports to the same bytes, a model of another
architecture is refused naming its tensor, published zips give their model."""

import hashlib
import json
import re
import zipfile

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view
from tensorflow.lite.python import schema_py_generated as schema

from conftest import (
    SHORT_MODEL,
    copy_sample_run,
    run,
    run_sample,
    serve_folder,
    write_yaml,
)
from test_predict import toco_style
from vww.export.litert import interpreter, load_classifier
from vww.model import mobilenet_v1
from vww.model.dataset import eval_examples, record_files
from vww.train.checkpoints import weights_saver

tf1 = tf.compat.v1
SETTINGS = {"image_size": 96, "grayscale": True, "depth_multiplier": 0.25,
            "weight_decay": 0.00004, "batch_norm_decay": 0.9, "dropout_keep_prob": 0.999}


@pytest.fixture(scope="module")
def imported(exported, sample_records, tmp_path_factory):
    """The exported model's .tflite imported: (its checkpoint prefix, the .tflite)."""
    out, _ = exported
    records, _ = sample_records
    prefix = tmp_path_factory.mktemp("import") / "model.ckpt-0"
    run("import_tflite.py", "--tflite", out / "model.tflite", "--records", *records["train"],
        "--num-images", 100, "--output", prefix, *SHORT_MODEL)
    return prefix, out / "model.tflite"


def val_images(sample_records, count=8):
    files = record_files(sample_records[0]["val"], "val")
    return [example.image for example in eval_examples(files, SETTINGS, count)]


def dequantized_forward(model, image):
    """Logits of an int8 .tflite computed in float64 by numpy from LiteRT's tensors: every
    convolution with its weights and bias dequantized, ReLU6 where the model fuses it."""
    runner = interpreter(model)
    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    details = {tensor["index"]: tensor for tensor in runner.get_tensor_details()}

    def constant(index):
        values = runner.get_tensor(index).astype(np.float64)
        quantization = details[index]["quantization_parameters"]
        scales, zero_points = quantization["scales"], quantization["zero_points"]
        shape = [1] * values.ndim
        shape[quantization["quantized_dimension"]] = scales.size
        return (values - zero_points.reshape(shape)) * scales.reshape(shape)

    x = image[0].astype(np.float64)
    for op, operator in zip(runner._get_ops_details(), tree.subgraphs[0].operators):
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weights, bias = constant(op["inputs"][1]), constant(op["inputs"][2])
            options = operator.builtinOptions
            stride, (kernel_h, kernel_w) = options.strideH, weights.shape[1:3]
            height, width, channels = x.shape
            out_h, out_w = -(-height // stride), -(-width // stride)
            pad_h = max((out_h - 1) * stride + kernel_h - height, 0)
            pad_w = max((out_w - 1) * stride + kernel_w - width, 0)
            padded = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2),
                                (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
            windows = sliding_window_view(padded, (kernel_h, kernel_w), axis=(0, 1))
            windows = windows[::stride, ::stride][:out_h, :out_w]  # [h, w, c, kh, kw]
            if op["op_name"] == "CONV_2D":
                x = np.einsum("ijcab,oabc->ijo", windows, weights) + bias
            else:
                taps = weights[0].reshape(kernel_h, kernel_w, channels, -1)
                x = np.einsum("ijcab,abcm->ijcm", windows, taps).reshape(out_h, out_w, -1) + bias
            if options.fusedActivationFunction == schema.ActivationFunctionType.RELU6:
                x = np.clip(x, 0, 6)
        elif op["op_name"] == "AVERAGE_POOL_2D":
            x = x.mean(axis=(0, 1), keepdims=True)
        elif op["op_name"] == "RESHAPE":
            x = x.reshape(-1)
    return x


def checkpoint_logits(prefix, weights, images):
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [1, 96, 96, 1])
        logits, _ = mobilenet_v1.build(inputs, SETTINGS, is_training=False)
        saver = weights_saver(weights)
        with tf1.Session() as sess:
            saver.restore(sess, str(prefix))
            return np.concatenate([sess.run(logits, {inputs: image}) for image in images])


def test_float_import_computes_the_dequantized_int8_graph(imported, sample_records):
    prefix, tflite = imported
    images = val_images(sample_records)
    model = tflite.read_bytes()
    expected = np.stack([dequantized_forward(model, image) for image in images])
    for weights in ("ema", "raw"):
        np.testing.assert_allclose(checkpoint_logits(prefix, weights, images), expected,
                                   rtol=1e-4, atol=1e-4)
    # The batch norms hold the measured statistics, not a pass-through: training mode
    # (batch statistics) then starts from the same function.
    reader = tf.train.load_checkpoint(str(prefix))
    variance = reader.get_tensor("MobilenetV1/Conv2d_1_pointwise/BatchNorm/moving_variance")
    gamma = reader.get_tensor("MobilenetV1/Conv2d_1_pointwise/BatchNorm/gamma")
    np.testing.assert_allclose(gamma, np.sqrt(variance.astype(np.float64) + 0.001), rtol=1e-6)
    assert variance.max() > 0.01
    assert reader.get_tensor("global_step") == 0


def toco_converted(model):
    """A TOCO-style copy (toco_style: quantized_dimension 3 on biases) whose first
    convolution (one input channel) is stored as TOCO stored TFLM's: a DEPTHWISE_CONV_2D
    with multiplier 8 and weights [1, 3, 3, 8]."""
    tree = schema.ModelT.InitFromPackedBuf(toco_style(model)[0], 0)
    graph = tree.subgraphs[0]
    first = graph.operators[0]
    conv = first.builtinOptions
    depthwise_code = next(i for i, code in enumerate(tree.operatorCodes)
                          if max(code.builtinCode, code.deprecatedBuiltinCode)
                          == schema.BuiltinOperator.DEPTHWISE_CONV_2D)
    weights = graph.tensors[first.inputs[1]]
    out_channels = weights.shape[0]
    data = np.frombuffer(bytes(tree.buffers[weights.buffer].data), np.int8)
    tree.buffers[weights.buffer].data = np.ascontiguousarray(
        data.reshape(weights.shape).transpose(3, 1, 2, 0)).view(np.uint8).reshape(-1)
    weights.shape = np.array([1, *weights.shape[1:3], out_channels], np.int32)
    weights.quantization.quantizedDimension = 3
    options = schema.DepthwiseConv2DOptionsT()
    options.padding, options.strideH, options.strideW = conv.padding, conv.strideH, conv.strideW
    options.depthMultiplier, options.fusedActivationFunction = (
        out_channels, conv.fusedActivationFunction)
    options.dilationHFactor = options.dilationWFactor = 1
    first.opcodeIndex = depthwise_code
    first.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
    first.builtinOptions = options
    builder = flatbuffers.Builder(0)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_toco_converted_copy_imports_to_the_same_checkpoint(imported, sample_records,
                                                            tmp_path):
    prefix, tflite = imported
    toco = tmp_path / "toco.tflite"
    toco.write_bytes(toco_converted(tflite.read_bytes()))
    # The copy computes what the original does (the first op now a depthwise one).
    images = val_images(sample_records, 4)
    runners = [load_classifier(path, SETTINGS)[1] for path in (tflite, toco)]
    assert [op["op_name"] for op in runners[1]._get_ops_details()][:2] == [
        "DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D"]
    for image in images:
        outputs = []
        for runner in runners:
            runner.set_tensor(runner.get_input_details()[0]["index"],
                              np.clip(np.round(image / 0.0078125), -128, 127).astype(np.int8))
            runner.invoke()
            outputs.append(runner.get_tensor(runner.get_output_details()[0]["index"]))
        np.testing.assert_array_equal(*outputs)
    records, _ = sample_records
    again = tmp_path / "toco" / "model.ckpt-0"
    run("import_tflite.py", "--tflite", toco, "--records", *records["train"],
        "--num-images", 100, "--output", again, *SHORT_MODEL)
    for suffix in (".index", ".data-00000-of-00001"):
        assert (again.parent / f"model.ckpt-0{suffix}").read_bytes() == \
            prefix.parent.joinpath(f"model.ckpt-0{suffix}").read_bytes()


def test_report_measures_float_int8_agreement_and_the_requantized_scores(
        imported, exported, sample_records, tmp_path):
    """report_import.py's figures against the per-image predictions of evaluate.py and
    evaluate_tflite.py, computed here from their own runs."""
    prefix, tflite = imported
    records, _ = sample_records
    val = records["val"]
    run("evaluate.py", "--checkpoint", prefix, "--records", *val, "--output",
        tmp_path / "eval.json", "--predictions", tmp_path / "float.json", *SHORT_MODEL)
    run("evaluate_tflite.py", "--tflite", tflite, "--records", *val, "--float-eval",
        tmp_path / "eval.json", "--output", tmp_path / "tflite_eval.json",
        "--predictions", tmp_path / "int8.json")
    run("report_import.py", "--tflite", tflite, "--checkpoint", prefix, "--requantized",
        tflite, "--records", *val, "--output", tmp_path / "report.json", *SHORT_MODEL)
    report = json.loads((tmp_path / "report.json").read_text())
    floats = json.loads((tmp_path / "float.json").read_text())["predicted"]
    int8 = json.loads((tmp_path / "int8.json").read_text())
    labels, int8_predicted = np.array(int8["labels"]), int8["predicted"]["slim_eval"]
    assert report["images"] == len(labels) == len(floats)
    assert report["float"]["correct"] == int((np.array(floats) == labels).sum())
    assert report["int8"]["correct"] == int((np.array(int8_predicted) == labels).sum())
    assert report["decisions_agree"] == int((np.array(floats) == int8_predicted).sum())
    assert report["agreement"] >= 0.99 and abs(report["accuracy_gap_images"]) <= 1
    # The original given as its own requantized copy: no difference at all.
    assert report["requantized"]["max_score_difference_int8"] == 0
    assert report["requantized"]["decisions_agree"] == report["images"]


@pytest.mark.parametrize("flags, named", [
    (["--depth-multiplier", "0.5"],
     r"tensor '[^']*Conv2d_0[^']*' \(operator 0\) has shape \[8, 3, 3, 1\] \(\[3, 3, 1, 8\] in "
     r"TensorFlow's layout\); MobilenetV1/Conv2d_0 needs \[3, 3, 1, 16\]"),
    (["--image-size", "128"], r"input shape \[1, 96, 96, 1\]; the recipe .* takes "
                              r"\[1, 128, 128, 1\]"),
])
def test_a_model_of_another_architecture_is_refused_naming_the_tensor(
        imported, sample_records, tmp_path, flags, named):
    _, tflite = imported
    records, _ = sample_records
    result = run("import_tflite.py", "--tflite", tflite, "--records", *records["train"],
                 "--output", tmp_path / "model.ckpt-0", *SHORT_MODEL, *flags, check=False)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {tflite}: "), result.stderr
    assert re.search(named, errors[0]), errors[0]
    assert not list(tmp_path.glob("model.ckpt-0*"))


def test_published_zip_gives_its_tflite_or_its_c_array(imported, tmp_path):
    _, tflite = imported
    model = tflite.read_bytes()
    run("write_c_source.py", "--tflite", tflite, "--array-name", "g_person_detect_model_data",
        "--output", tmp_path / "person_detect_model_data.cc")
    layouts = {
        "tflite": {"person_model_int8/person_detect.tflite": model, "README": b"x"},
        "c_source": {
            "person_model_int8/person_detect_model_data.cc":
                (tmp_path / "person_detect_model_data.cc").read_bytes(),
            "person_model_int8/person_image_data.cc":
                b"const unsigned char g_person_image_data[] = {0x01, 0x02, 255};\n"},
    }
    for name, members in layouts.items():
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for member, data in members.items():
                zipped.writestr(member, data)
        run("extract_tflite.py", "--zip", archive, "--output", tmp_path / f"{name}.tflite")
        assert (tmp_path / f"{name}.tflite").read_bytes() == model
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zipped:
        zipped.writestr("a.tflite", model)
        zipped.writestr("b.tflite", model)
    result = run("extract_tflite.py", "--zip", two, "--output", tmp_path / "two.tflite",
                 check=False)
    assert result.returncode == 1
    assert f"error: {two}: holds 2 TFLite models, not one: a.tflite; b.tflite" in result.stderr
    assert not (tmp_path / "two.tflite").exists()


@pytest.fixture
def published_server(sample_run, tmp_path):
    """127.0.0.1 serving the reference run's person .tflite zipped as TFLM's published model:
    (its URL, its md5, the .tflite)."""
    tflite = sample_run / "results/sample/person_detection/person_detection.tflite"
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "person.zip", "w") as zipped:
        zipped.write(tflite, "person_model_int8/person_detect.tflite")
    with serve_folder(served) as url:
        yield (f"{url}/person.zip", hashlib.md5((served / "person.zip").read_bytes()).hexdigest(),
               tflite)


@pytest.mark.workflow
def test_folder_model_fine_tuned_from_the_published_model(published_server, sample_run,
                                                          tmp_path):
    """init_from: tflm_person end to end, in a copy of the reference run (its face shards
    kept): download (local server, md5 from the config), extraction, import, its report,
    eval_init.json, fine-tuning, the .tflite; then a recipe the published model does not fit
    is refused in one line naming its tensor."""
    url, md5, tflite = published_server
    workdir = copy_sample_run(sample_run, tmp_path / "work")
    # The folder model's images and settings (tests/folder_config.yaml), from the published
    # model: a model of its own, so the reference run's face model stays as it is.
    init = write_yaml(workdir / "init.yaml", f"""\
tflm_person: {{url: "{url}", md5: {md5}}}
models:
  published_faces:
    source: folder
    folder: results/sample_faces
    class_names: [no_face, face]
    init_from: tflm_person
    steps: 60
    batch_size: 32
    learning_rate: 0.01
    batch_norm_decay: 0.9
    moving_average_decay: 0.99
    log_interval_steps: 20
""")
    model_dir = workdir / "results/sample/published_faces"
    output = run_sample(workdir, "imported", "results/sample/published_faces/summary.json",
                        configs=[init]).stdout
    published = workdir / "results/sample/published/tflm_person.tflite"
    assert published.read_bytes() == tflite.read_bytes()
    report = json.loads((model_dir / "init/import_report.json").read_text())
    before = json.loads((model_dir / "eval_init.json").read_text())
    assert report["images"] == before["images"] == 40
    assert report["float"]["accuracy"] == before["accuracy"]
    assert report["tflite_sha256"] == hashlib.sha256(published.read_bytes()).hexdigest()
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["fine_tuning"]["accuracy_before"] == before["accuracy"]
    assert summary["fine_tuning"]["from_checkpoint"] == "model.ckpt-0"
    log = (workdir / "results/sample/logs/published_faces/train-60.log").read_text()
    assert "from results/sample/published_faces/init/model.ckpt-0 (ema weights)" in log
    assert (model_dir / "published_faces.tflite").stat().st_size > 250_000
    # The face shards were the reference run's: not made again.
    assert "rule tfrecord_shard:" not in output and "rule import_tflite:" in output

    wider = write_yaml(workdir / "wider.yaml", "models:\n  published_faces: "
                                               "{depth_multiplier: 0.5}\n")
    result = run_sample(workdir, "imported", configs=[init, wider], check=False)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines()
              if line.startswith("error: results/sample/published/tflm_person.tflite: ")]
    runner = interpreter(published.read_bytes())
    first_weights = runner._get_ops_details()[0]["inputs"][1]
    name = next(tensor["name"] for tensor in runner.get_tensor_details()
                if tensor["index"] == first_weights)
    assert errors == ["error: results/sample/published/tflm_person.tflite: tensor "
                      f"'{name}' (operator 0) has shape [8, 3, 3, 1] ([3, 3, 1, 8] in TensorFlow's "
                      "layout); MobilenetV1/Conv2d_0 needs [3, 3, 1, 16], for the recipe "
                      "(depth_multiplier 0.5, image_size 96, grayscale true)"], result.stdout
