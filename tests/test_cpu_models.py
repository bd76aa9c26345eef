"""Another CPU, emulated: QEMU's x86-64 user mode runs this machine's Python and TensorFlow
as an AMD EPYC Rome (Zen 2: AVX2 and FMA, no AVX-512, another vendor), so every library's
run-time CPU detection (TensorFlow's choice of oneDNN, oneDNN's and XLA's instruction sets,
TFLite's kernels, libjpeg-turbo) sees that CPU. What the workflow makes there must be the
bytes it makes here. (QEMU runs the code some 500 times slower: a few steps and images.)"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, SHORT, run, sha256
from test_training import checkpoint_digests
from vww import arithmetic
from vww.coco import images_dir, instances_path, load_json, vww_annotations

QEMU = shutil.which("qemu-x86_64")
CPU_MODEL = "EPYC-Rome"
pytestmark = [pytest.mark.emulated,
              pytest.mark.skipif(not QEMU, reason="needs qemu-x86_64 (Debian: qemu-user)")]


def emulated(*args, env=None):
    """Run this Python with `args` on the emulated CPU: its stdout and stderr."""
    result = subprocess.run([QEMU, "-cpu", CPU_MODEL, sys.executable, *map(str, args)],
                            capture_output=True, text=True,
                            env={**arithmetic.original_environ(), **(env or {})})
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout + result.stderr


def emulated_cli(script, *args):
    return emulated(REPO / "scripts" / script, *args)


def test_the_emulated_cpu_is_an_avx2_cpu_without_avx512():
    """What TensorFlow and oneDNN see there: AVX2 and FMA, no AVX-512 (a native run here
    has both)."""
    seen = emulated("-c", "import vww, tensorflow as tf; "
                    "tf.nn.conv2d(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 1, 1, 1]), 1, \"SAME\")",
                    env={"ONEDNN_VERBOSE": "1", "PYTHONPATH": str(REPO / "scripts"),
                         "TF_CPP_MIN_LOG_LEVEL": "0"})  # TF's CPU feature notice
    offered = seen.split("To enable the following instructions:")[1].split(",")[0].split()
    assert "AVX2" in offered and "FMA" in offered and "AVX512F" not in offered
    assert "isa:Intel AVX2" in seen


def test_dataset_shards_are_the_same_bytes(sample_coco, tmp_path):
    root, _, _ = sample_coco
    annotations = tmp_path / "val.json"
    annotations.write_text(json.dumps(vww_annotations(load_json(instances_path(root, "val")),
                                                      "person", 0.005)))
    shards = []
    for name, runner in (("here", run), ("emulated", emulated_cli)):
        shard = tmp_path / name / "val.record-00000-of-00004"
        runner("build_tfrecord_shard.py", "--annotations", annotations, "--images",
               images_dir(root, "val"), "--shard", 0, "--num-shards", 4, "--output", shard,
               "--report", tmp_path / name / "report.json", "--max-image-side", 96)
        shards.append(sha256(shard))
    assert shards[0] == shards[1]


def test_training_gives_the_same_checkpoint(sample_records, tmp_path):
    records, _ = sample_records
    digests = []
    for name, runner in (("here", run), ("emulated", emulated_cli)):
        runner("train.py", "--records", *records["train"], "--num-train-records", 160,
               "--train-dir", tmp_path / name, "--steps", 2, *SHORT, "--batch-size", 8)
        digests.append(checkpoint_digests(tmp_path / name, 2))
    assert digests[0] == digests[1]


def test_quantization_gives_the_same_tflite(exported, sample_records, tmp_path):
    """The frozen graph and calibration images of conftest's `exported` .tflite."""
    out, _ = exported
    records, _ = sample_records
    emulated_cli("quantize.py", "--frozen-graph", out / "frozen_ema.pb", "--records",
             *records["val"], "--num-images", 50, "--output", tmp_path / "model.tflite")
    assert sha256(tmp_path / "model.tflite") == sha256(out / "model.tflite")
