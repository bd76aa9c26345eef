"""A file a CLI cannot use ends it with one line naming the file and why, in its log too."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import predict
from conftest import REPO, train
from test_damage import one_line_error
from vww.base import arithmetic
from vww.base.cli import RUN_ENV, InputError
from vww.data.records import serialize_example

# The int8 conversion warns of input statistics it does not need (it calibrates instead).
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
# TensorFlow and TFLM log from C++ straight to file descriptor 2 on import, whatever
# TF_CPP_MIN_LOG_LEVEL says once TFLM is loaded; those lines are not the CLI's.
NATIVE_LOG = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                        r"|[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
NOT_TFLITE = "not a TFLite model (no 'TFL3' flatbuffer identifier)"
MODEL_ERRORS = {
    "text": NOT_TFLITE,
    "random": NOT_TFLITE,
    "missing": "No such file or directory",
    "float": "float32 input, float32 output: not an int8 model (quantize.py writes one)",
    "three_classes": "output shape [1, 3], not the scores of 2 classes [1, 2]",
}
INSTANCES = {
    "info": {"description": "COCO 2014"},
    "images": [{"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "width": 640,
                "height": 480}],
    "annotations": [],
    "categories": [{"id": 1, "name": "person"}],
}


def start(script, *args):
    return subprocess.Popen([sys.executable, f"scripts/{script}", *map(str, args)], cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process):
    """(exit status, the lines the CLI wrote to stderr)."""
    _, stderr = process.communicate(timeout=600)
    return process.returncode, [line for line in stderr.splitlines()
                                if not NATIVE_LOG.match(line)]


def run(script, *args):
    return finish(start(script, *args))


def tiny_tflite(num_classes, int8):
    """A few-op classifier of [1, 96, 96, 1] images into `num_classes`, float or full int8."""
    model = tf.keras.Sequential([
        tf.keras.Input((96, 96, 1), batch_size=1),
        tf.keras.layers.Conv2D(2, 3, strides=8),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(num_classes),
        tf.keras.layers.Softmax(),
    ])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(-1, 1, (1, 96, 96, 1)).astype(np.float32)] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{case: path} of .tflite files no CLI can use."""
    root = tmp_path_factory.mktemp("models")
    contents = {
        "text": b"a text file, not a model\n",
        "random": np.random.default_rng(0).bytes(3000),
        "float": tiny_tflite(2, int8=False),
        "three_classes": tiny_tflite(3, int8=True),
    }
    for case, content in contents.items():
        (root / f"{case}.tflite").write_bytes(content)
    return {case: root / f"{case}.tflite" for case in MODEL_ERRORS}


@pytest.fixture(scope="module")
def predictions(models, tmp_path_factory):
    """{case: (exit status, stderr lines)} of predict.py on each model, run side by side."""
    image = tmp_path_factory.mktemp("image") / "gray.png"
    image.write_bytes(tf.io.encode_png(tf.fill([48, 64, 1], tf.constant(128, tf.uint8))).numpy())
    processes = {case: start("predict.py", path, image) for case, path in models.items()}
    return {case: finish(process) for case, process in processes.items()}


@pytest.mark.parametrize("case", MODEL_ERRORS)
def test_predict_names_the_model_and_what_is_wrong(predictions, models, case):
    status, lines = predictions[case]
    assert status == 1
    assert lines == [f"error: {models[case]}: {MODEL_ERRORS[case]}"]


def test_model_error_is_in_the_log_too(models, tmp_path):
    log = tmp_path / "evaluate_tflite.log"
    status, lines = run("evaluate_tflite.py", "--tflite", models["float"], "--records",
                        tmp_path, "--output", tmp_path / "eval.json", "--log", log)
    expected = f"error: {models['float']}: {MODEL_ERRORS['float']}"
    assert status == 1 and lines == [expected]
    assert log.read_text().splitlines()[-1].endswith(f" ERROR {expected}")


def test_truncated_json_says_where_it_stops_on_stderr_and_in_the_log(tmp_path):
    instances, log = tmp_path / "instances_val2014.json", tmp_path / "annotations.log"
    text = json.dumps(INSTANCES, indent=1)
    instances.write_text(text[:text.index("COCO_val2014") + 8])  # cut in a file name
    status, lines = run("make_vww_annotations.py", "--instances", instances,
                        "--output", tmp_path / "vww.json", "--log", log)
    expected = (f"error: {instances}: not valid JSON (line 8, column 26): "
                "the file ends before the JSON does")
    assert status == 1 and lines == [expected]
    logged = log.read_text().splitlines()
    assert len(logged) == 1 and logged[0].endswith(f" ERROR {expected}")
    assert not (tmp_path / "vww.json").exists()


def test_tensorflow_start_up_chatter_stays_out_of_stderr(tmp_path):
    """absl's warning, the oneDNN notice, "Could not find cuda drivers" and the cuInit
    line (vww.base.quiet), with TF_CPP_MIN_LOG_LEVEL unset; and the deprecation notices
    that building the graph prints with TF_CPP_MIN_LOG_LEVEL=0."""
    env = {key: value for key, value in arithmetic.original_environ().items()
           if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "scripts/export_inference_graph.py", "--output",
                             tmp_path / "graph.pb"], cwd=REPO, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    native = [line for line in result.stderr.splitlines() if NATIVE_LOG.match(line)]
    assert native == [] and "oneDNN" not in result.stderr and "cuda" not in result.stderr
    assert "is deprecated" not in result.stderr
    shown = subprocess.run([sys.executable, "scripts/export_inference_graph.py", "--output",
                            tmp_path / "again.pb"], cwd=REPO, capture_output=True, text=True,
                           env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert "is deprecated and will be removed" in shown.stderr  # what the default drops


def test_training_and_predict_print_no_deprecation_notices(trained, tmp_path):
    """The notices TensorFlow printed twice each in a training log, and in predict's output
    on a checkpoint."""
    train_dir, log = trained
    assert "deprecat" not in log
    Image.new("L", (64, 48), 128).save(tmp_path / "gray.png")
    result = subprocess.run([sys.executable, "scripts/predict.py", train_dir, tmp_path],
                            cwd=REPO, capture_output=True, text=True,
                            env=arithmetic.original_environ())
    assert result.returncode == 0 and result.stdout, result.stderr
    assert "deprecat" not in result.stdout + result.stderr


def test_missing_file_is_one_line(tmp_path):
    missing = tmp_path / "model.tflite"
    status, lines = run("write_manifest.py", "--output", tmp_path / "MANIFEST", missing)
    assert status == 1 and lines == [f"error: {missing}: No such file or directory"]


def test_unexpected_error_keeps_its_traceback_and_reaches_the_log(tmp_path):
    instances, log = tmp_path / "instances.json", tmp_path / "annotations.log"
    instances.write_text("{}")  # valid JSON, not COCO's
    status, lines = run("make_vww_annotations.py", "--instances", instances,
                        "--output", tmp_path / "vww.json", "--log", log)
    assert status == 1
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'categories'"
    logged = log.read_text()
    assert " ERROR unexpected error\nTraceback" in logged and "KeyError: 'categories'" in logged


@pytest.mark.parametrize("name, make, problem", [
    ("model.ckpt-5", lambda path: None, "No such file or directory"),
    ("notes.txt", lambda path: path.write_text("notes"),
     "not a .tflite nor a checkpoint (no .index file)"),
    ("train", lambda path: path.mkdir(), "no checkpoint in this folder"),
])
def test_a_path_that_is_no_checkpoint_is_named(tmp_path, name, make, problem):
    make(tmp_path / name)
    with pytest.raises(InputError) as caught:
        predict.checkpoint_prefix(tmp_path / name)
    assert str(caught.value) == f"{tmp_path / name}: {problem}"


@pytest.mark.parametrize("text", ["0:background\n1:person\n2:cat\n", "background\nperson\n"])
def test_labels_that_are_not_two_classes_are_named(tmp_path, text):
    labels = tmp_path / "labels.txt"
    labels.write_text(text)
    with pytest.raises(InputError, match="not the labels of 2 classes"):
        predict.class_names(labels)


def test_a_split_of_one_class_is_named_by_the_int8_evaluation(tmp_path):
    """ROC, precision-recall and an operating point need both classes."""
    (tmp_path / "m.tflite").write_bytes(tiny_tflite(2, int8=True))
    jpeg = tf.io.encode_jpeg(tf.fill([48, 64, 3], tf.constant(90, tf.uint8))).numpy()
    shard = tmp_path / "val.record-00000-of-00001"
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for index in range(3):
            image = {"id": index, "file_name": f"{index}.jpg", "label": 0, "objects": []}
            writer.write(serialize_example(image, jpeg, 48, 64))
    status, lines = run("evaluate_tflite.py", "--tflite", tmp_path / "m.tflite", "--records",
                        shard, "--output", tmp_path / "report.json")
    assert status == 1 and not (tmp_path / "report.json").exists()
    assert lines == [f"error: {shard}: the val split has images of one class only "
                     "(3 of class 0): no ROC"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a 1 MiB tmpfs: needs root")
def test_a_full_disk_is_one_line_with_the_space_left_and_the_remedy(sample_records, tmp_path):
    """Training on a disk with room for its log and events but not for a checkpoint (a
    1 MiB tmpfs), as a job of a workflow run: the file it was writing, the space left there,
    what to do, and the run's command to paste."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)], check=True)
    try:
        result = train(sample_records[0], tiny / "train", 5, check=False, env={
            RUN_ENV: json.dumps({"configfiles": ["my.yaml"], "config": {}})})
        free = shutil.disk_usage(tiny).free
        line = one_line_error(result)
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    assert line.startswith(f"error: {tiny}/train/model.ckpt-5.data-00000-of-00001: "), line
    assert (f": no space left on the device ({free / 2**20:,.1f} MiB free in {tiny}/train): "
            "free some space there, or set results_dir to a disk with room, then rerun (it "
            "resumes where it stopped): snakemake --cores all --configfile my.yaml") in line
